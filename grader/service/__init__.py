"""`grader serve` (issue 13): students submit on the web, workers grade from a queue.

`queue` is the jobs table's operations (enqueue, claim with a lease, heartbeat, complete
once); `worker` runs `grader worker` processes that take jobs and grade them through the
batch engine's per-submission function.
"""

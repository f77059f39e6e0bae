"""The student's verbs, run on the student's own machine (Linux, macOS or Windows).

- `check`: `grader check [FOLDER | NOTEBOOK]`, the public tests of a released assignment;
- `submit`: `grader submit --student-id ID [FOLDER]`, the zip to hand in;
- `local`: the student's files imported in this process for those public tests (no
  sandbox: it is the student's own code on the student's own machine).

Nothing here imports TensorFlow or a POSIX-only module (`resource`, `fcntl`, `pwd`).
"""

"""Keras verdicts computed outside the student's process.

The student's code runs only in the student runtime. A hidden test gets the student's
model there (``student.keras_cnn.build_cnn()``) and reads it as an artifact, plain data
that crosses the proxy (`artifact`): ``get_config()``, ``get_compile_config()`` and,
where a test needs them, each layer's ``get_weights()``. What the student's process says
about its model *is* the submission; nothing it computes is a verdict.

- `spec`: in the grader's process, the config is validated against an allow-list of
  layer classes, arguments, optimizers and losses into a `spec.ModelSpec`; a Lambda
  layer, a custom class or an unknown argument is refused with a reason (Keras's
  ``safe_mode`` has been bypassed: CVE-2025-1550, CVE-2025-8747). Architecture checks
  read descriptions built from it.
- `runtime`: one evaluator per submission, a `grader.runtime.student.StudentRuntime` with an
  empty workspace whose only module is `keras_eval`, trusted code the grader sends over
  the protocol: the same sandbox and limits, and no student code.
- `keras_eval`: in the evaluator, the model is rebuilt from the spec with Keras's own
  constructors (never deserialised), initialised from the grader's seed (never from the
  student's weights, which could be fitted to the test set), trained under the budget and
  run on a private split of the test images; labels of that split never leave the grader.
- A subclassed model (AlexNet) is read as its blocks chained in assignment order, and that
  reading is accepted only if the chain, rebuilt with the student's own weights, predicts
  what the student's model predicts on random inputs.
"""

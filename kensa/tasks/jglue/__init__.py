"""The JGLUE suite's tasks (``suites/jglue``): the JGLUE tasks and the other tasks of the Japanese LM leaderboard,
one module per task, each registering its versions with :func:`kensa.tasks.registry.register`.

* :mod:`.jcommonsenseqa`, :mod:`.jnli`, :mod:`.marc_ja`, :mod:`.jcola`, :mod:`.xwinograd_ja`: multiple choice.
* :mod:`.jsquad`, :mod:`.jaqket_v2`, :mod:`.xlsum_ja`, :mod:`.mgsm`, :mod:`.jsts`: greedy generation.

:mod:`.jcommonsenseqa` is the pattern to copy for a new multiple-choice task.
"""

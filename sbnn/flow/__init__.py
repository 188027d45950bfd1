"""The flow layer above the stages: ``sbnn build``, ``sbnn sim`` and the stage runners.

* :mod:`sbnn.flow.config`: :class:`CompileConfig` (the compile's options, validated once) and
  :class:`BuildConfig`, which embeds it (FINN's ``DataflowBuildConfig`` is the model).
* :mod:`sbnn.flow.build`: the stages train -> export -> compile -> stitch -> estimate -> rtlsim
  -> deploy -> report, each reading the files of the stage before and writing only its own folder.
* :mod:`sbnn.flow.sim`: ``sbnn sim`` (stitch into its own folder, then rtlsim and comparison), and
  :func:`sbnn.flow.sim.simulate`, which the build's rtlsim stage calls on the stitch stage's design.

This package imports nothing on import, so that the stages may import :mod:`sbnn.flow.config`.
"""

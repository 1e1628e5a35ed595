"""The stack service: the verbs of ``stack`` over a host driver (``service.StackService``), and the
plans of the verbs that only stop and start what exists (``lifecycle``). The daemon that serves
the verbs on a socket comes later; the CLI calls the service in-process. Nothing here prints.
"""

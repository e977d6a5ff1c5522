"""Door processes (``OMS_HTTP_WORKERS``): the HTTP door out of the engine's process.

``process`` runs one door (``oms door``, started by ``oms serve``, never by hand);
``supervisor`` starts the doors of one ``oms serve``, restarts one that dies and stops them all.
"""

"""Gateway logs: the ``logs`` table, its queries and filters, and the control-plane logs endpoints.

State lives in ``models`` (what the data plane calls: ``insert_log``), the query language of the
logs API in ``filters``, the HTTP handlers in ``responses`` and the seeding admin API in ``admin``.
"""

"""Integrations with frameworks a host is built on; each needs its own extra.

* :mod:`sessionpacks.contrib.django`: a Django app (extra ``django``) whose store runs inside
  the host's ``transaction.atomic()``.
"""

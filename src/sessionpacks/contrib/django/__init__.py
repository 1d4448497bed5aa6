"""sessionpacks as a Django app: models, migrations, and a store in the host's transactions.

Add ``"sessionpacks.contrib.django"`` to ``INSTALLED_APPS`` (its label is ``sessionpacks``) and
run ``migrate``; then :class:`~sessionpacks.contrib.django.store.DjangoStore` hands out
repositories for :class:`~sessionpacks.service.PackService`::

    from sessionpacks import PackService
    from sessionpacks.contrib.django.store import DjangoStore

    packs = PackService(DjangoStore().practice("clinic-1", "Australia/Sydney"))

A command run inside the host's ``transaction.atomic()`` commits with the host's own writes, or
rolls back with them. This module imports nothing from Django, so that importing it does not
need the app registry to be ready.
"""

"""publishers: the differentially private release engine (pure computation).

Public surface::

    publishers.release    compute_release, preview, privacy_cost, ComputedRelease
    publishers.dashboard  render_dashboard, privacy_statement
    publishers.downloads  render_csv, write_csv
    publishers.errors     PublisherError, ReleaseRefused, RowsMismatch

Depends on ``contracts`` only. Storage, the budget ledger and the release cache live in
``hub``, which hands rows in through the interface described in ``publishers.release``.
"""

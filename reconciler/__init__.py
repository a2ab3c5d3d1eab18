"""reconciler: keeps an application's database and identity provider in the state a
committed policy declares, and never loses customer data doing it.

Layers, each importing only those below it (checked by import-linter, see pyproject)::

    cli            faces: the command line (later the daemon's runtime too)
    act            the pipeline: observe → plan → gate → apply → record
    plan           pure planning and rendering
    safety         rules over migration SQL (findings)
    observe        what is live in a target
    source, ledger migration layouts (files + history tables); reconciler's own store
    policy         the YAML contract, validated
    db             connections, URLs
    errors, secrets, durations
"""

__version__ = "0.1.0"

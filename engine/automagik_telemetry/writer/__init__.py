"""The writer process: take runs of rows from the rings, deliver them, commit.

Started by the client as ``python -m automagik_telemetry.writer`` (a fresh
interpreter: it inherits none of the application's threads, locks or ``__main__``), it reads its
settings as JSON on stdin and attaches to the segment by name.

Threads:

* the main thread watches the three rings (traces, metrics, logs). A ring's unread rows become
  a batch when they are *ready*: ``batch_size`` rows or half a full batch while nothing is in
  flight; a full batch (the cap: ``max_batch_bytes``, at most the ring over
  ``max_in_flight + 1``) while another batch is in flight; older than ``flush_interval``, a
  flush was requested, or the writer is exiting, at any time. A batch is one copy of a byte
  range (rows are wire-ready in the ring, see ``ring/``), cut at a row boundary at the cap.
  So: small batches when idle, batches as large as the cap under load (fewer inserts: each
  costs ClickHouse a part to write and merge), with no tuning;
* ``max_in_flight`` sender threads each deliver one batch at a time with its retries
  (compression and HTTP release the GIL, so they overlap with the main thread). A batch the
  destination refuses for what it holds is set aside on disk (``rejected/`` in the spool
  directory) so that nothing waits behind it; one too large for it (413) goes again in halves.

Commit: a ring's tail moves to the start of its oldest batch not yet delivered, or to the read
position when all are delivered. A writer that dies is restarted by the client and re-reads from
the tail: nothing accepted is lost (at-least-once; a batch carries a deduplication token where
the sink supports one).

The writer exits when the client asks (``Slot.SHUTDOWN``) or when the application is gone (its
parent pid changed), in both cases after delivering what is in the rings, within a bounded
grace; it then unlinks the segment, since nobody else needs it.
"""

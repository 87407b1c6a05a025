"""The shared-memory rings between the application and its writer.

* ``layout``: the segment's geometry: word slots, page offsets, signals (kinds), row limits
  (the descriptor; nothing here touches memory);
* ``segment``: create, attach, lock, list and identify the named POSIX segment;
* ``spsc``: the two ends of each single-producer / single-consumer ring (``RingWriter`` in the
  application, ``RingReader`` in the writer) and the memory-ordering argument.

The words both processes share beyond the rings themselves (counters, flush and shutdown
words, message slots, the cut table) are read and written through ``control.py``.
"""

"""The training loop (EMA, mixed precision, checkpoints that resume exactly, chunked runs) and
its multi-process helpers."""

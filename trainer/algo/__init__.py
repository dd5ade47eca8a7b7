"""Pure algorithm code: advantages, loss aggregation, policy losses, covariance, token entropy,
entropy controllers, the per-domain objective and the hidden-state effective rank. Tensors and
explicit scalars in, tensors out; nothing here imports ray, deepspeed or vllm (tests/test_layout.py
checks it)."""

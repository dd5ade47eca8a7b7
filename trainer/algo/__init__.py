"""Pure algorithm code: advantages, loss aggregation, policy losses, covariance, token entropy,
entropy controllers and the per-domain objective. Tensors and explicit scalars in, tensors out;
nothing here imports ray, deepspeed or vllm (tests/test_layout.py checks it)."""

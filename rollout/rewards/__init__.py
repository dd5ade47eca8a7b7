"""The rewards of the task domains and the workers that compute them: math answers checked with
math-verify in a child process under a deadline (`math_check`, `math_verify_worker`), model-written
code run against its tests in the sandbox (`code_check`, with the sandbox itself in `sandbox/`),
creative novelty and the LLM judge (`novelty`, `embeddings`, `judge`), and `RewardWorker`, the plain
actor body the cluster runs a pool of per domain. Tasks (`rollout/tasks/`) call into these; nothing
here knows a domain's user-chosen name except the worker, which is built from (name, config slice).
"""

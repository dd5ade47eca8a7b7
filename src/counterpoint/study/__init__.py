"""Built-in studies: named, reproducible sets of runs (conditions × seeds) on the embedded
cluster, and a report that says with intervals which of the seed claims held
(`counterpoint study list|run|report`; docs/studies.md)."""

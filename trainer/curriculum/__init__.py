"""The curriculum: stages and their advance rules (`stages`), the schedule state and its versions
(`state`), orderings and weightings (`order`, `weights`), the typed plan of one step (`plan`), and
the run's one owner of its schedule, `controller.json` in the run folder (`controller`). No Ray,
no FastAPI: the driver and the control plane both open the controller on the run folder."""

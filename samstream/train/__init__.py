"""Training stack for SAM 2 (section 5 of the reference facts): losses, synthetic videos, datasets,
prompt simulation, optimiser/schedule, the trainer and the `samstream train` command.

Stage 1 (this package today) trains on single frames with interactive correction clicks; video-clip
training plugs into the trainer once the tracker's memory policy is available. Submodules import lazily
(`from samstream.train.trainer import Trainer`) so that `samstream` stays light."""

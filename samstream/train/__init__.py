"""Training stack for SAM 2 (section 5 of the reference facts): losses, synthetic videos, datasets,
prompt simulation, optimiser/schedule, the trainer and the `samstream train` command.

Single frames (num_frames=1) train with interactive correction clicks (`step`); clips of several frames
go through `video_step`, SAM 2's clip forward with the tracker's memory policy (`samstream train
--frames`). Submodules import lazily
(`from samstream.train.trainer import Trainer`) so that `samstream` stays light."""

"""Training stack for SAM 2, as SAM 2's training code has it: losses, synthetic videos, datasets, prompt
simulation, optimiser/schedule and the trainer, all set by one `config.TrainConfig`; the default model's
recipe (`recipe`) and its time-boxed fine-tune (`finetune`).

Single frames (frames=1) train with interactive correction clicks (`step`); clips of several frames
go through `video_step`, SAM 2's clip forward with the tracker's memory policy (`samstream train
--frames`). Submodules import lazily
(`from samstream.train.trainer import Trainer`) so that `samstream` stays light."""

#!/usr/bin/env bash
# Writes docs/cli.md: a short header, then every command's --help as the current code prints it.
cd "$(dirname "$0")/.."
{
cat <<'HDR'
# CLI reference

Every command and its options, as `samstream <command> --help` prints them (this page is made by
`tools/make_cli_reference.sh`; `tests/test_layout.py` checks that it names every option).
With no `--model`, every command uses the embedded default model ([model card](model-card.md)); `--model`
takes an official name (`sam2.1-hiera-tiny`, `-small`, `-base-plus`, `-large`, `sam2-hiera-*`) or a path to a
`.pt` / `.safetensors` file. The same commands run as `python -m samstream`.

| command | what it does | more |
|---|---|---|
| [`segment`](#samstream-segment) | one mask of an image from clicks and/or a box | |
| [`track`](#samstream-track) | prompted objects through a video | |
| [`segment-all`](#samstream-segment-all) | every object of an image (automatic mask generation) | |
| [`track-all`](#samstream-track-all) | every object of a video, found on key frames | |
| [`eval score`](#samstream-eval-score), [`eval vos`](#samstream-eval-vos), [`eval image`](#samstream-eval-image) | J&F of masks; track a dataset and score it; simulated clicks | [formats-and-evaluation.md](formats-and-evaluation.md) |
| [`train`](#samstream-train) | train or fine-tune a model | [training.md](training.md) |
| [`train-default`](#samstream-train-default) | retrain the embedded default model | [model-card.md](model-card.md) |
| [`finetune-default`](#samstream-finetune-default) | continue the embedded model's training for a time budget (a GPU lease) | [training.md](training.md) |
| [`synth`](#samstream-synth) | write synthetic videos as a DAVIS folder | [training.md](training.md) |
| [`app`](#samstream-app) | annotate video masks in the browser, with the model in the loop | [app.md](app.md) |
| [`batch track`](#samstream-batch-track), [`batch track-all`](#samstream-batch-track-all), [`batch eval vos`](#samstream-batch-eval-vos) | track, track-all or eval vos over many videos on a Ray cluster | [batch.md](batch.md) |
| [`export`](#samstream-export) | the model as ONNX graphs, for ONNX Runtime (`samstream.runtime`) | [export.md](export.md) |
HDR
S="${SAMSTREAM:-.venv/bin/samstream}"
h() { echo; echo "## samstream $*"; echo; echo '```text'; COLUMNS=110 $S "$@" --help | sed "s#$PWD/##g"; echo '```'; }
for c in segment track segment-all track-all; do h $c; done
h eval score; h eval vos; h eval image
for c in train train-default finetune-default synth app; do h $c; done
h app users add; h app users list; h app users remove; h app users passwd; h app export
h batch; h batch track; h batch track-all; h batch eval; h batch eval vos
h export
} > docs/cli.md

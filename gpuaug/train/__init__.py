"""Training and evaluation of SER models from gpuaug batches (the ``train`` extra).

Corpora (:mod:`.corpora`) and speaker-independent folds (:mod:`.folds`); the log-mel front end
and z-normalisation (:mod:`.features`); the seeds' CNN-GRU (:mod:`.model`); the label-action
aware loss (:mod:`.loss`); the fold trainer (:mod:`.loop`), data-parallel order
(:mod:`.distributed`) and safe checkpoints (:mod:`.checkpoint`); test conditions
(:mod:`.conditions`); metrics and significance tests (:mod:`.metrics`, :mod:`.stats`); the run
(:mod:`.run`) and its report (:mod:`.report`). ``import gpuaug`` does not import this package.
"""
from .corpora import Corpus, open_corpus
from .features import LogMel, Normalizer
from .folds import (Fold, leave_one_session_out, leave_one_speaker_out, make_folds, read_fold_file, speaker_kfold,
                    speaker_overlap)
from .loss import aux_targets_from_dims, class_weights, ser_loss, weight_sums
from .metrics import confusion_matrix, macro_f1, mean_std, scores, scores_from_confusion, uar, wa
from .model import CNNGRU, DEFAULT_CONFIG, TABLE1_GRID, CNNGRUConfig, grid_configs
from .run import RunConfig
from .stats import paired_ttests

__all__ = ["Corpus", "open_corpus", "Fold", "make_folds", "leave_one_speaker_out", "speaker_kfold",
           "leave_one_session_out", "read_fold_file", "speaker_overlap", "LogMel", "Normalizer", "CNNGRU",
           "CNNGRUConfig", "DEFAULT_CONFIG", "TABLE1_GRID", "grid_configs", "class_weights", "ser_loss", "weight_sums",
           "aux_targets_from_dims", "confusion_matrix", "uar", "wa", "macro_f1", "scores", "scores_from_confusion",
           "mean_std", "paired_ttests", "RunConfig"]  # the run itself: gpuaug.train.run.run

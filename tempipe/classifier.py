"""Shape-group classifier: a multiclass SVM tuned by Bayesian optimisation (optuna).

The paper's last step (Williamson et al. 2022): the shape groups found without labels
train a classifier, checked on an 80/20 stratified split with 10-fold cross-validation.
A trained :class:`ClassifierResult` labels the particles of another dataset
(:meth:`ClassifierResult.predict`), so the groups of one synthesis apply to another.
:func:`classifier_ablation` repeats the training with fewer inputs (features only, CNN
parameters only), the paper's evidence that the CNN parameters carry the shape.

Budget: the hyper-parameter search (kernel, C, gamma) runs on a seeded subsample of the
training split with a bounded number of trials and seconds; the 10-fold CV accuracy is
measured on at most ``cv_max`` training particles; the final model is fitted on the whole
training split.

Groups of fewer than ``MIN_GROUP`` particles (a handful of odd particles a clustering of a
small dataset set apart) cannot be split and cross-validated: they are left out of the
training, listed in ``ClassifierResult.left_out``, and never predicted.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tempipe.errors import ParameterError
from tempipe.groupstats import _check_labels, _check_table
from tempipe.shape_features import FEATURE_SETS, feature_table, has_cnn, seed_of, random_subset

#: Smallest group the classifier learns (module docstring).
MIN_GROUP = 5

KERNELS: tuple[str, ...] = ("rbf", "linear", "poly")


@dataclass(frozen=True)
class ClassifierParams:
    """Budget and protocol of :func:`train_classifier`.

    Attributes
    ----------
    test_fraction : float
        Share of particles held out for the test accuracy (stratified).
    cv_folds : int
        Folds of the cross-validation reported as ``cv_accuracy``.
    n_trials, timeout_s : int, float
        Bound of the optuna search (whichever comes first).
    search_max : int
        Training particles (seeded subsample) the search evaluates on, 3-fold.
    cv_max : int
        Training particles the ``cv_folds``-fold accuracy is measured on.
    C_range, gamma_range : (float, float)
        Log-uniform search ranges; gamma is relative to 1 / n_variables (the
        standardised data's "scale" value).
    """

    test_fraction: float = 0.2
    cv_folds: int = 10
    n_trials: int = 20
    timeout_s: float = 15.0
    search_max: int = 1500
    cv_max: int = 3000
    C_range: tuple[float, float] = (1e-2, 1e3)
    gamma_range: tuple[float, float] = (1e-2, 1e1)

    def __post_init__(self):
        if not (0 < self.test_fraction < 1) or self.cv_folds < 2 or self.n_trials < 1:
            raise ParameterError(f"ClassifierParams: need 0 < test_fraction < 1, "
                                 f"cv_folds >= 2, n_trials >= 1; got {self}.")


@dataclass
class ClassifierResult:
    """A trained shape-group classifier and its scores.

    Attributes
    ----------
    model : sklearn Pipeline
        StandardScaler + SVC, fitted on the training split.
    feature_set : str
    columns : list of str
        Variables the model reads (from :func:`tempipe.population.feature_table`).
    test_accuracy, cv_accuracy, cv_sd : float
        Accuracy on the held-out split; mean and sd over the CV folds.
    confusion : DataFrame
        Test-split counts, index ``true`` groups, columns ``predicted`` groups.
    best_params : dict
        ``kernel``, ``C``, ``gamma`` found by the search.
    n_train, n_test, n_trials : int
    seconds : float
    left_out : dict
        Groups of fewer than ``MIN_GROUP`` particles, not learnt: ``{group: particles}``.
    """

    model: Pipeline
    feature_set: str
    columns: list[str]
    test_accuracy: float
    cv_accuracy: float
    cv_sd: float
    confusion: pd.DataFrame
    best_params: dict = field(default_factory=dict)
    n_train: int = 0
    n_test: int = 0
    n_trials: int = 0
    seconds: float = 0.0
    left_out: dict = field(default_factory=dict)

    def predict(self, particles: pd.DataFrame) -> np.ndarray:
        """Group of every particle of a table (this dataset or another one).

        Parameters
        ----------
        particles : DataFrame
            Particle table with the same variables (same calibration state: ``_nm``
            columns if the training table had them).

        Returns
        -------
        (N,) int ndarray
            Predicted group, 0 where a variable is not finite.

        Raises
        ------
        ParameterError
            The table lacks a variable the classifier was trained on.
        """
        table = feature_table(_check_table(particles), self.feature_set)
        missing = [c for c in self.columns if c not in table]
        if missing:
            raise ParameterError(
                f"the table lacks {missing}, which the classifier was trained on; give both "
                "datasets the same calibration (pixel size) and shape-model columns.")
        values = table[self.columns].to_numpy(float)
        ok = np.isfinite(values).all(axis=1)
        out = np.zeros(len(table), dtype=int)
        if ok.any():
            out[ok] = self.model.predict(values[ok])
        return out


def _svm(kernel: str, C: float, gamma_rel: float, n_vars: int) -> Pipeline:
    return make_pipeline(StandardScaler(), SVC(kernel=kernel, C=C, gamma=gamma_rel / n_vars,
                                               degree=3, cache_size=500))


def _search(X: np.ndarray, y: np.ndarray, seed: int, params: ClassifierParams
            ) -> tuple[dict, int]:
    """Bayesian (TPE) search of kernel, C and relative gamma by 3-fold accuracy."""
    folds = StratifiedKFold(max(2, min(3, _min_count(y))), shuffle=True, random_state=seed)

    def objective(trial: optuna.Trial) -> float:
        kernel = trial.suggest_categorical("kernel", KERNELS)
        C = trial.suggest_float("C", *params.C_range, log=True)
        gamma = (trial.suggest_float("gamma", *params.gamma_range, log=True)
                 if kernel != "linear" else 1.0)
        model = _svm(kernel, C, gamma, X.shape[1])
        return float(cross_val_score(model, X, y, cv=folds).mean())

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=params.n_trials, timeout=params.timeout_s)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = {"kernel": "rbf", "gamma": 1.0} | study.best_params
    return best, len(study.trials)


def _min_count(y: np.ndarray) -> int:
    return int(np.unique(y, return_counts=True)[1].min())


def _prepare(particles, labels, feature_set):
    """Finite rows of the feature set in a group > 0 of >= MIN_GROUP such rows.

    Returns ``X, y, columns, left_out`` (``{group: rows}`` of the smaller groups).
    """
    particles = _check_table(particles)
    labels = _check_labels(particles, labels)
    table = feature_table(particles, feature_set)
    values = table.to_numpy(float)
    keep = np.isfinite(values).all(axis=1) & (labels > 0)
    groups, counts = np.unique(labels[keep], return_counts=True)
    small = counts < MIN_GROUP
    if (~small).sum() < 2:
        raise ParameterError(f"training needs at least two groups of >= {MIN_GROUP} particles "
                             f"with finite {feature_set!r} variables; got groups "
                             f"{groups.tolist()} with counts {counts.tolist()}.")
    keep &= ~np.isin(labels, groups[small])
    left_out = {int(g): int(c) for g, c in zip(groups[small], counts[small])}
    return values[keep], labels[keep], list(table.columns), left_out


def train_classifier(particles: pd.DataFrame, labels, rng=0, *, feature_set: str = "both",
                     params: ClassifierParams | None = None) -> ClassifierResult:
    """Train a multiclass SVM on shape-group labels, hyper-parameters by optuna.

    Parameters
    ----------
    particles : DataFrame
        Particle table (N rows).
    labels : (N,) int array-like
        Shape group per row (e.g. ``find_shape_groups(...).labels``); 0 rows are left out.
    rng : int or Generator
        Seeds the split, the subsamples and the search.
    feature_set : {"both", "features", "cnn"}
        Inputs of the classifier (see :func:`tempipe.population.feature_table`); "both"
        falls back to "features" when the table has no CNN columns.
    params : ClassifierParams, optional

    Returns
    -------
    ClassifierResult

    Raises
    ------
    ParameterError
        Labels not aligned with the table, fewer than two groups of ``MIN_GROUP``
        particles (smaller groups are left out: ``left_out``), unknown feature set.
    """
    params = params or ClassifierParams()
    start = time.perf_counter()
    if feature_set == "both" and isinstance(particles, pd.DataFrame) and not has_cnn(particles):
        feature_set = "features"
    X, y, columns, left_out = _prepare(particles, labels, feature_set)
    seed = seed_of(rng)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=params.test_fraction, stratify=y, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # folds larger than a tiny group
        sub = random_subset(len(X_train), params.search_max, seed)
        best, n_trials = _search(X_train[sub], y_train[sub], seed, params)
        model = _svm(best["kernel"], best["C"], best["gamma"], X.shape[1])
        cv_sub = random_subset(len(X_train), params.cv_max, seed + 1)
        folds = StratifiedKFold(max(2, min(params.cv_folds, _min_count(y_train[cv_sub]))),
                                shuffle=True, random_state=seed)
        cv = cross_val_score(model, X_train[cv_sub], y_train[cv_sub], cv=folds)
    model.fit(X_train, y_train)
    predicted = model.predict(X_test)
    groups = np.unique(y)
    confusion = pd.crosstab(pd.Categorical(y_test, groups), pd.Categorical(predicted, groups),
                            dropna=False, rownames=["true"], colnames=["predicted"])
    return ClassifierResult(
        model=model, feature_set=feature_set, columns=columns,
        test_accuracy=float(np.mean(predicted == y_test)), cv_accuracy=float(cv.mean()),
        cv_sd=float(cv.std()), confusion=confusion,
        best_params={"kernel": best["kernel"], "C": best["C"],
                     "gamma": (best["gamma"] / X.shape[1] if best["kernel"] != "linear"
                               else np.nan)},
        n_train=len(y_train), n_test=len(y_test), n_trials=n_trials,
        seconds=time.perf_counter() - start, left_out=left_out)


def classifier_ablation(particles: pd.DataFrame, labels, rng=0, *, feature_sets=None,
                        params: ClassifierParams | None = None) -> pd.DataFrame:
    """The paper's ablation: the same labels learnt from different inputs.

    Parameters
    ----------
    particles, labels, rng, params
        As :func:`train_classifier`.
    feature_sets : sequence of str, optional
        Default ``("both", "features", "cnn")`` (CNN sets only when the table has them).

    Returns
    -------
    DataFrame
        One row per feature set: ``feature_set, n_variables, test_accuracy,
        cv_accuracy, cv_sd, kernel, C, gamma, seconds``; ``gap`` is the test accuracy
        lost against the first row.
    """
    if feature_sets is None:
        feature_sets = ("both", "features", "cnn") if has_cnn(particles) else ("features",)
    rows = []
    for fset in feature_sets:
        if fset not in FEATURE_SETS:
            raise ParameterError(f"feature set {fset!r} is not one of {FEATURE_SETS}.")
        res = train_classifier(particles, labels, rng, feature_set=fset, params=params)
        rows.append({"feature_set": fset, "n_variables": len(res.columns),
                     "test_accuracy": res.test_accuracy, "cv_accuracy": res.cv_accuracy,
                     "cv_sd": res.cv_sd, **res.best_params, "seconds": res.seconds})
    table = pd.DataFrame(rows)
    table["gap"] = table["test_accuracy"].iloc[0] - table["test_accuracy"]
    return table

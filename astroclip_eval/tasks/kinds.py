"""The table of task kinds: each kind of downstream task declared once, with the rule that writes its per-model
outputs, when the config turns it on, the config sections its settings are in, and the per-model tables the summary
stacks across models and the overview shows.

The workflow's default target, the summary step, the report's Summary items and the overview read this table and
name no task: a new kind is its module, its notebook, its rule file and an entry here (and its schema section).
Plain data and names only, so the Snakefile can import it without importing torch or matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Main:
    """A score the scoreboard shows for a table: per label (the `label` column, when the table has several) and per
    query modality (the `query` column), this model's best row over the rest (protocol, target): the highest, the
    lowest (`lower`), or the closest to `ideal`. `title` heads the scoreboard's column. `baseline` names the column
    holding what a predictor that learnt nothing scores (the majority guesser's): a score whose interval reaches it
    is "at baseline", never shaded as a lead."""

    score: str
    title: str
    label: str = ""
    query: str = "query"
    lower: bool = False
    ideal: float | None = None
    baseline: str = ""
    rows: Callable[[Any], Any] | None = None  # the table's rows it is read from (a long table's metric), all when None
    name: str = ""  # its name on the scoreboard and in the results file, when `score` names a column several share

    @property
    def key(self) -> str:
        """The score's name on the scoreboard: `name`, or the column it is read from."""
        return self.name or self.score

    def goodness(self, values: Any) -> Any:
        """The scores turned so that higher is better: negated when lower is better, the distance from `ideal`
        negated when there is one."""
        if self.ideal is not None:
            return -abs(values - self.ideal)
        return -values if self.lower else values


@dataclass(frozen=True)
class Table:
    """A per-model CSV that the summary stacks across models into `summary/{name}.csv` (with each model's name and
    embedding dimension in front) and the overview shows as one section.

    `shown` are the overview's columns, each a header and a format over the row's columns (`"{bias:+.4f}"`);
    `spread` is a score shown once per query -> target modality pair, as columns after them (with its 95% interval
    when the table has `{spread}_lo` and `{spread}_hi`); `listed` False shows the figure and the note but not the
    rows (a long table, in its CSV). `figure` names the function (`module:function`) that draws the stacked table,
    written as `summary/{name}_vs_embedding_dim.png` (`figure_file`: another name, for a figure of another axis).
    `references` names the config section whose entries carry published figures or bounds for this table's scores,
    as (section, key column, score column). `main` are its scores on the scoreboard; `predictions` the rule's output
    with every galaxy's prediction (`downstream.PREDICTION_COLUMNS`), from which two models' best scores are
    compared by a paired bootstrap."""

    output: str
    name: str
    title: str
    anchor: str
    note: str
    caption: str
    shown: tuple[tuple[str, str], ...]
    spread: str = ""
    figure: str = ""
    figure_caption: str = ""
    figure_file: str = "{name}_vs_embedding_dim.png"
    listed: bool = True
    references: tuple[str, str, str] | None = None
    main: tuple[Main, ...] = ()
    predictions: str = ""


@dataclass(frozen=True)
class Kind:
    """One kind of task: its rule's name (its outputs are every model's results of the kind), when it runs, whether
    that rule executes a notebook (named as the kind, shown as an HTML page in the report), the config sections the
    overview lists as its settings, its tables across models, and files shared by every model that its overview
    sections read (`shared`: key -> (rule, output name), with a function `module:function` turning the file into
    (title, anchor, note, header, rows))."""

    name: str
    rule: str
    enabled: Callable[[dict[str, Any]], bool]
    notebook: bool
    settings: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    shared: dict[str, tuple[str, str, str]] = field(default_factory=dict)


PLOTTING = "astroclip_eval.report.plotting"
MODEL = (("model", "{model}"), ("embedding dim", "{embedding_dim}"))  # every overview table starts with these
PAIR = ("query -> target", "{query} -> {target}")


def bounded(header: str, score: str, spec: str = ".3f") -> tuple[str, str]:
    """An overview column showing a score with its 95% interval: "0.863 [0.851, 0.874]"."""
    return header, f"{{{score}:{spec}}} [{{{score}_lo:{spec}}}, {{{score}_hi:{spec}}}]"


KINDS: tuple[Kind, ...] = (
    Kind(
        "redshift", "redshift_notebook", lambda config: True, notebook=True, settings=("protocols",),
        tables=(
            Table(
                "table", "redshift_r2", "Redshift R^2 across models", "redshift",
                "Redshift R^2 on the valid validation rows (1 is perfect; 0 is no better than the mean redshift). "
                "Protocols: <em>reproduction</em>, the mean redshift of the k nearest validation galaxies; "
                "<em>zero_shot</em>, the AstroCLIP paper's distance-weighted kNN on standardised embeddings fitted on "
                "the train split; <em>few_shot</em>, an MLP trained on the train split. Columns are query modality "
                "-&gt; neighbour (or training) modality: \"spectrum -&gt; image\" means each galaxy's spectrum "
                "embedding was compared with image embeddings.",
                "summary_redshift_r2.rst", (*MODEL, ("protocol", "{protocol}")), spread="r2",
                figure=f"{PLOTTING}:r2_vs_dim", figure_caption="summary_redshift_r2_figure.rst",
                main=(Main("r2", "redshift R^2"),), predictions="predictions_table",
            ),
            Table(
                "metrics_table", "redshift_metrics", "Redshift bias, scatter and outliers", "redshift-metrics",
                "With dz = (predicted - true) / (1 + true) on the same predictions: the bias is the median of dz, "
                "sigma_NMAD is 1.4826 times its median absolute deviation, sigma68 half the width of its central "
                "68%, outliers have |dz| &gt; 0.15. In brackets: the 95% bootstrap interval over the rows.",
                "summary_redshift_metrics.rst",
                (*MODEL, ("protocol", "{protocol}"), PAIR, bounded("bias", "bias", "+.4f"),
                 bounded("sigma_NMAD", "sigma_nmad", ".4f"),
                 bounded("sigma68", "sigma68", ".4f"),
                 bounded("outliers", "outlier_fraction")),
                main=(Main("sigma_nmad", "redshift sigma_NMAD", lower=True),), predictions="predictions_table",
            ),
        ),
    ),
    Kind(
        "similarity", "similarity_notebook", lambda config: True, notebook=True, settings=("similarity",),
        tables=(
            Table(
                "retrieval_csv", "retrieval", "Cross-modal retrieval", "retrieval",
                "For each valid galaxy's spectrum (image), the rank of its own image (spectrum) among all valid "
                "galaxies' by cosine similarity: top-1 and top-10 accuracy and the median rank. Chance is 1/n, 10/n "
                "and n/2.",
                "summary_retrieval.rst",
                (*MODEL, ("query -> own target", "{query} -> own {target}"), ("n", "{n:,}"),
                 bounded("top-1", "top1"),
                 bounded("top-10", "top10"),
                 bounded("median rank", "median_rank", "g")),
                main=(Main("top10", "retrieval top-10"),),
            ),
        ),
    ),
    Kind(
        "representation", "representation", lambda config: config["representation"]["enabled"], notebook=False,
        settings=("representation",),
        tables=(
            Table(
                "table", "representation", "The embedding space", "representation",
                "What the valid rows' unit-length embeddings themselves say, label-free but for the last. "
                "<em>rankme</em>: the effective number of directions in use (exp of the entropy of the normalised "
                "singular values; at most the dimension; higher: more of the space used). <em>directions_90</em>, "
                "<em>directions_99</em>: the fewest directions holding 90% and 99% of the squared singular values. "
                "<em>uniformity</em>: log of the mean of exp(-2 |z_i - z_j|^2) over all pairs (lower: spread more "
                "evenly over the sphere). <em>alignment</em>: the mean |z_image - z_spectrum|^2 of a galaxy's two "
                "embeddings (lower: its pair closer). <em>modality_gap</em>: the distance between the two "
                "modalities' mean embeddings (no better direction: a gap is compatible with good retrieval). "
                "<em>mutual_knn</em>: the share of a galaxy's k nearest image neighbours also among its k nearest "
                "spectrum neighbours (higher: the modalities agree on who is alike). <em>hubness</em>: the skewness "
                "of how often each galaxy is among the others' k nearest (lower: fewer hubs). "
                "<em>property_consistency</em>: a label's spread over a galaxy's k nearest neighbours over its spread "
                "over all galaxies (lower: neighbours share it; 1 is no better than random neighbours). In brackets: "
                "the 95% bootstrap interval over the galaxies, for the means over galaxies.",
                "summary_representation.rst",
                (*MODEL, ("modality", "{modality}"), ("metric", "{metric}"), ("label", "{label}"), ("n", "{n:,}"),
                 bounded("value", "value", ".4g")),
                figure="astroclip_eval.tasks.representation:space_vs_dim",
                figure_caption="summary_representation_figure.rst",
                main=(Main("value", "RankMe (directions in use)", query="modality", name="rankme",
                           rows=lambda frame: frame["metric"] == "rankme"),
                      Main("value", "mutual kNN (image and spectrum neighbours shared)", query="modality",
                           name="mutual_knn", rows=lambda frame: frame["metric"].str.startswith("mutual_knn"))),
            ),
            Table(
                "spectrum", "representation_spectrum", "Singular-value spectra", "representation-spectrum",
                "Each model's singular values per modality, largest first, normalised to the largest (log scale): a "
                "spectrum that falls fast uses few of its directions. The rows are in "
                "summary/representation_spectrum.csv.",
                "summary_representation_spectrum.rst",
                (*MODEL, ("modality", "{modality}"), ("direction", "{direction}"),
                 ("singular value", "{singular_value:.4g}")),
                figure="astroclip_eval.tasks.representation:spectrum_figure",
                figure_caption="summary_representation_spectrum_figure.rst", figure_file="{name}.png", listed=False,
            ),
        ),
    ),
    Kind("explorer", "explorer", lambda config: True, notebook=False, settings=("explorer",)),
    Kind(
        "properties", "properties_notebook", lambda config: bool(config["properties"] or config["classifications"]),
        notebook=True,
        tables=(
            Table(
                "property_table", "properties_r2", "Galaxy properties", "properties",
                "R^2 of each property from catalogues joined to the validation set, on the n valid rows that have "
                "it, per protocol and query -&gt; target modality pair. Published figures, bounds and baselines named "
                "in the config are beside this run's scores under \"Against references\".",
                "summary_properties_r2.rst", (*MODEL, ("protocol", "{protocol}"), ("property", "{property}"),
                                              ("n", "{n:,}")),
                spread="r2", figure=f"{PLOTTING}:property_r2_vs_dim", figure_caption="summary_properties_r2_figure.rst",
                references=("properties", "property", "r2"),
                main=(Main("r2", "property R^2", label="property"),), predictions="property_predictions",
            ),
            Table(
                "class_table", "classification", "Classifications", "morphology",
                "Accuracy and weighted F1, and balanced accuracy (the mean recall over the classes) and macro F1, "
                "which weigh every class alike; majority: the accuracy of always answering the most common true "
                "class, and (balanced) its balanced accuracy, one over the classes. On an imbalanced question "
                "accuracy near the majority's says nothing was learnt; the scoreboard ranks by balanced accuracy and "
                "marks a score whose interval reaches the guesser's as \"at baseline\".",
                "summary_classification.rst",
                (*MODEL, ("protocol", "{protocol}"), ("question", "{question}"), PAIR, ("n", "{n:,}"),
                 bounded("accuracy", "accuracy"),
                 bounded("balanced accuracy", "balanced_accuracy"),
                 bounded("weighted F1", "f1_weighted"),
                 bounded("macro F1", "f1_macro"),
                 ("majority", "{majority:.3f}"), ("(balanced)", "{majority_balanced:.3f}")),
                references=("classifications", "question", "accuracy"),
                main=(Main("balanced_accuracy", "classification balanced accuracy", label="question",
                           baseline="majority_balanced"),),
                predictions="class_predictions",
            ),
        ),
        shared={"joins": ("join_catalogues", "summary", "astroclip_eval.tasks.catalogues:join_section")},
    ),
    Kind(
        "posteriors", "posteriors_notebook", lambda config: "posteriors" in config, notebook=True,
        settings=("posteriors",),
        tables=(
            Table(
                "table", "posteriors", "Posteriors", "posteriors",
                "Each label's posterior given one modality's embedding (an ensemble of conditional neural spline "
                "flows trained on the train split), on the valid validation rows that have the label. NLL: the "
                "ensemble's mean negative log-likelihood (nats; lower is better), and each flow's mean and spread as "
                "the original AstroCLIP reports it. Coverage: the share of true values inside the central 68% and "
                "95% intervals (calibrated: 0.68 and 0.95). PIT KS: the PIT's distance from uniform. CRPS and the "
                "median 68% width: accuracy and sharpness in the label's units.",
                "summary_posteriors.rst",
                (*MODEL, ("label", "{label}"), ("query", "{modality}"), ("n", "{n:,}"), ("NLL", "{nll:.3f}"),
                 ("NLL per flow", "{nll_members_mean:.3f} +- {nll_members_std:.3f}"),
                 bounded("68%", "coverage68"),
                 bounded("95%", "coverage95"), ("PIT KS", "{pit_ks:.3f}"),
                 ("CRPS", "{crps:.4g}"), ("68% width", "{width68:.4g}"), ("median R^2", "{median_r2:.3f}")),
                main=(Main("coverage68", "posterior 68% coverage", label="label", query="modality", ideal=0.68),),
            ),
            Table(
                "joint_table", "posteriors_joint", "Joint posterior (the original's)", "posteriors-joint",
                "With posteriors.joint: one density over several labels given one modality's embedding, on the rows "
                "that have them all, trained as the original AstroCLIP (a cosine-annealed Adam, 25 epochs, the best "
                "validation epoch). NLL in the standardised labels' units, as the original reports it (not "
                "comparable to the 1-D posteriors' NLLs in the labels' units): the ensemble's, and each flow's mean "
                "and spread, the original's figure.",
                "summary_posteriors_joint.rst",
                (*MODEL, ("labels", "{labels}"), ("query", "{modality}"), ("n", "{n:,}"), ("flows", "{members}"),
                 ("NLL", "{nll:.3f}"), ("NLL per flow", "{nll_members_mean:.3f} +- {nll_members_std:.3f}")),
            ),
            Table(
                "marginals_table", "posteriors_marginals", "Joint posterior: each label's calibration", "posteriors-marginals",
                "Each label's marginal of the joint posterior: the coverage of its central 68% and 95% intervals "
                "(calibrated: 0.68 and 0.95), the PIT's distance from uniform, the median 68% width and the "
                "posterior median's R^2.",
                "summary_posteriors_marginals.rst",
                (*MODEL, ("label", "{label}"), ("query", "{modality}"), ("n", "{n:,}"), bounded("68%", "coverage68"),
                 bounded("95%", "coverage95"), ("PIT KS", "{pit_ks:.3f}"), ("68% width", "{width68:.4g}"),
                 ("median R^2", "{median_r2:.3f}")),
            ),
        ),
    ),
    Kind(
        "budgets", "budgets_notebook", lambda config: "budgets" in config, notebook=True, settings=("budgets",),
        tables=(
            Table(
                "table", "budgets", "Label budgets", "budgets",
                "R^2 against the fraction of the train split's labels a protocol is fitted on (seeded nested "
                "subsets, at least 10 rows; in-modal), one colour per model, one line style per protocol "
                "(zero_shot solid, each k its own marker; few_shot dashed; linear ridge dotted), the band spanning "
                "the repeats. The rows are in summary/budgets.csv.",
                "summary_budgets.rst",
                (*MODEL, ("label", "{label}"), ("query", "{modality}"), ("protocol", "{protocol}"),
                 ("fraction", "{fraction:g}"), ("train rows", "{n_train:,}"),
                 ("R^2", "{r2_mean:.3f} +- {r2_std:.3f}")),
                figure="astroclip_eval.tasks.budgets:budget_curves", figure_caption="summary_budgets_figure.rst",
                figure_file="{name}.png", listed=False,
            ),
        ),
    ),
)


def enabled(config: dict[str, Any]) -> list[Kind]:
    """The kinds this config runs, in the table's order."""
    return [kind for kind in KINDS if kind.enabled(config)]


def tables(config: dict[str, Any]) -> list[Table]:
    """Every table across models this config writes, in the table's order."""
    return [table for kind in enabled(config) for table in kind.tables]

"""Studies: the reuse benchmark and its decision rules, the epochs and reference-set-size studies, on any models
or on the demo zoo, and their Markdown reports. Nothing here draws: the figures are :mod:`zest_core.figures`.

- :mod:`~zest_core.studies.rules`: the methods and their kinds, ModelDiff's rule, Zest's relative distance, ROC AUC.
- :mod:`~zest_core.studies.scoring`: every (method, a, b) score of a benchmark, each model's parts once.
- :mod:`~zest_core.studies.accounting`: the queries each method made of each model, measured.
- :mod:`~zest_core.studies.reuse`: :func:`reuse_benchmark`, :class:`ReuseResult`, the summary and the report files.
- :mod:`~zest_core.studies.reuse_report`: the calibrated reuse report read back from its JSON file, as table rows.
- :mod:`~zest_core.studies.markdown`: the Markdown tables.
- :mod:`~zest_core.studies.epochs`, :mod:`~zest_core.studies.refsize`: the Zest paper's Fig. 2 and Fig. 3.
- :mod:`~zest_core.studies.zoo_studies`: the studies run on a :class:`~zest_core.zoo.Zoo`, and their files.
"""
from .accounting import (
    QueryLedger,
    count_text,
    describe_entry,
    queries_report,
    signature_queries,
    signature_query_detail,
)
from .audit import COMBINED_METHODS, AuditResult, audit, audit_signatures, audit_zoo_models, combine_decisions
from .commitment import check_commitment, commitment_record, method_queries_digest, zest_queries_digest
from .epochs import EpochCurves, epoch_curves
from .handover import audit_record, compare_records, read_report, record_intact
from .markdown import reuse_markdown, summary_markdown
from .refsize import RefsizeStudy, refsize_study
from .reuse import ReuseResult, reuse_benchmark, summarize_reuse
from .reuse_report import OutdatedReuseReportError, read_reuse_report, reuse_overall_rows, reuse_rows
from .rules import (
    DEFAULT_METHODS,
    METHOD_KINDS,
    METHODS,
    RELATION_ORDER,
    as_distance,
    modeldiff_rule,
    order_relations,
    roc_auc,
    zest_relative,
)
from .scoring import PairScorer, score_key
from .zoo_studies import (
    epochs_study,
    refsize_study_on_zoo,
    reuse_study,
    unlearning_study,
    write_reuse_report,
)

__all__ = [
    "audit_record",
    "compare_records",
    "read_report",
    "record_intact",
    "check_commitment",
    "commitment_record",
    "method_queries_digest",
    "zest_queries_digest",
    "AuditResult",
    "COMBINED_METHODS",
    "audit",
    "audit_signatures",
    "audit_zoo_models",
    "combine_decisions",
    "OutdatedReuseReportError",
    "DEFAULT_METHODS",
    "METHODS",
    "METHOD_KINDS",
    "RELATION_ORDER",
    "EpochCurves",
    "PairScorer",
    "QueryLedger",
    "RefsizeStudy",
    "ReuseResult",
    "as_distance",
    "count_text",
    "describe_entry",
    "epoch_curves",
    "epochs_study",
    "modeldiff_rule",
    "order_relations",
    "queries_report",
    "read_reuse_report",
    "refsize_study",
    "refsize_study_on_zoo",
    "reuse_benchmark",
    "reuse_markdown",
    "reuse_overall_rows",
    "reuse_rows",
    "reuse_study",
    "roc_auc",
    "score_key",
    "signature_queries",
    "signature_query_detail",
    "summarize_reuse",
    "summary_markdown",
    "unlearning_study",
    "write_reuse_report",
    "zest_relative",
]

"""The shared controls: models A and B, the reference set and the parameters, kept in session state.

:func:`render_controls` draws the widgets (on the Setup page, ``app.py``); :func:`current_setup`
rebuilds the same :class:`Setup` from session state on any page, with the defaults for anything
never set, so pages that need only the reference set and the config work without a visit to Setup.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import streamlit as st

from zest_core import DEFAULT_AUDIT_BUDGET, BudgetPlan, ReferenceSet, ZestConfig, Zoo, apply_budget
from zest_core.zoo import matched_null
from zest_core.explain import MIN_NULL
from zest_core.pipeline import ALIGN_METHODS, FILLS, METRICS, MODES, SEGMENTATION_METHODS

from . import services, uploads
from .services import ModelChoice
from .state import default

SOURCES = ("Demo zoo", "Upload", "Path", "HTTP endpoint")
REF_SOURCES = ("Built-in MNIST digits", "Image folder", "Upload images")
ALIGN_CHOICES = ("auto", "none") + ALIGN_METHODS
MODEL_FILE_TYPES = ["pt", "pth", "ts", "onnx", "bin", "ckpt", "safetensors"]
IMAGE_FILE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "ppm", "pgm"]
FINAL = "final"

# Demo defaults: a fresh comparison of two small models and their matched null, well under a minute on 2 CPU cores.
DEFAULTS: dict[str, Any] = {
    "ref_source": REF_SOURCES[0],
    "ref_folder": "",
    "ref_resize": False,
    "ref_height": 28,
    "ref_width": 28,
    "n": 32,
    "num_samples": 500,
    # The query budget per model: the dashboard's default is zest audit's (README, "Query budgets"); 0 is none.
    "budget": DEFAULT_AUDIT_BUDGET,
    "segmentation": "quickshift",
    "fill": "dataset_mean",
    "mode": "zest",
    "metric": "cosine",
    "align": "auto",
    "seed": 0,
    "input_adapter": False,
    "n_boot": 200,
    "level": 0.95,
}
MODEL_KEYS = ("source", "zoo", "epoch", "path", "url", "arch")
NULL_KEYS = ("null_zoo", "null_specs")  # the unrelated models the user names (zoo names; specs, one a line)
SETUP_KEYS = tuple(DEFAULTS) + tuple(f"{slot}_{name}" for slot in ("a", "b") for name in MODEL_KEYS) + NULL_KEYS


@dataclass(frozen=True)
class RefChoice:
    """The reference set as chosen: built-in digits, a folder or uploads (by content digest)."""

    source: str
    n: int
    seed: int
    folder: str = ""
    size: tuple[int, int] | None = None
    uploads: tuple[tuple[str, str], ...] = ()  # (name, sha256) of each uploaded image

    def load(self) -> ReferenceSet:
        """The reference set (cached).

        Raises
        ------
        ZestError
            For a missing folder, unreadable images or images of mixed sizes.
        """
        if self.source == REF_SOURCES[0]:
            return services.mnist_refset(self.n, self.seed)
        if self.source == REF_SOURCES[1]:
            return services.folder_refset(self.folder, self.n, self.seed, self.size)
        files = tuple(st.session_state.get("ref_upload_files", ()))
        return services.upload_refset(files, self.size)

    @property
    def ready(self) -> bool:
        return bool(self.folder) if self.source == REF_SOURCES[1] else (
            bool(self.uploads) if self.source == REF_SOURCES[2] else True
        )

    def describe(self) -> str:
        if self.source == REF_SOURCES[0]:
            return f"{self.n} held-out MNIST digits (seed {self.seed})"
        if self.source == REF_SOURCES[1]:
            return f"up to {self.n} images of {self.folder}"
        return f"{len(self.uploads)} uploaded images"


@dataclass(frozen=True)
class Setup:
    """Everything that determines a comparison."""

    model_a: ModelChoice | None
    model_b: ModelChoice | None
    refset: RefChoice
    config: ZestConfig
    metric: str
    align: str
    seed: int
    unrelated: tuple[tuple[str, str], ...]  # (name, spec) of the unrelated models the user named
    n_boot: int
    level: float
    budget: int = 0
    input_adapter: bool = False  # convert the reference images to each model's channels and size

    @property
    def automatic_null(self) -> bool:
        """Whether both models come from the demo zoo, whose manifest then picks the matched null."""
        return all(m is not None and m.from_zoo for m in (self.model_a, self.model_b))

    def key(self) -> str:
        """A hash of every field: equal keys mean the same comparison."""
        values = {
            "a": None if self.model_a is None else self.model_a.spec,
            "b": None if self.model_b is None else self.model_b.spec,
            "refset": [self.refset.source, self.refset.n, self.refset.seed, self.refset.folder,
                       self.refset.size, self.refset.uploads],
            "config": self.config.to_dict(),
            "metric": self.metric, "align": self.align, "seed": self.seed,
            "unrelated": () if self.automatic_null else self.unrelated,
            "n_boot": self.n_boot, "level": self.level, "budget": self.budget, "input_adapter": self.input_adapter,
        }
        return _digest(values)

    def budgeted(self, refset: ReferenceSet) -> tuple[ReferenceSet, ZestConfig, BudgetPlan | None]:
        """The reference images and config of the comparison: what the budget buys (the first N, L), if one is set.

        Raises
        ------
        ZestError
            For a budget too small for one image's local fit.
        """
        if not self.budget:
            return refset, self.config, None
        return apply_budget(self.budget, refset, self.config)

    def audit_argv(self, zoo_root: str | None) -> list[str] | None:
        """The ``zest audit`` arguments that recompute this comparison's verdict (α aside), or None when the CLI
        cannot name its inputs (an uploaded model or reference image, a folder, a seed other than 0, the L1 or L∞
        metric). A report carries them, so that ``zest verify`` can check it."""
        models = (self.model_a, self.model_b)
        if any(m is None or m.kind == "upload" for m in models) or self.metric not in ("cosine", "l2"):
            return None
        if self.refset.source != REF_SOURCES[0] or self.refset.seed != 0:
            return None
        argv = ["audit", self.model_a.spec, self.model_b.spec, "--refset", f"mnist:test:{self.refset.n}",
                "--method", f"zest-{self.metric}", "--align", self.align, "--budget", str(self.budget)]
        if not self.budget:
            argv += ["--samples", str(self.config.num_samples)]
        default = ZestConfig()
        for field, flag in AUDIT_CONFIG_FLAGS.items():
            if getattr(self.config, field) != getattr(default, field):
                argv += [flag, str(getattr(self.config, field))]
        if not self.automatic_null and self.unrelated:
            argv += ["--unrelated", *(spec for _, spec in self.unrelated)]
        if zoo_root is not None:
            argv += ["--zoo", zoo_root]
        if self.input_adapter:
            argv.append("--input-adapter")
        return argv

    def inputs_key(self, models: Any) -> str:
        """A hash of ``models`` (any JSON-able description) with this setup's reference images, config and budget.

        Equal keys mean the same signatures, for pages that compute the signatures of many models.
        """
        return _digest([models, dataclasses.asdict(self.refset), self.config.to_dict(), self.budget])

    def budgeted_inputs(self) -> tuple[ReferenceSet, ZestConfig]:
        """The reference images and config every signature of this setup uses: the budget's N and L, if one is set.

        Raises
        ------
        ZestError
            For reference images that cannot be read, or a budget too small for one image's local fit.
        """
        refset, config, _ = self.budgeted(self.refset.load())
        return refset, config


# Config fields a comparison may set, and the ``zest audit`` flag of each (README, "CLI").
AUDIT_CONFIG_FLAGS = {"segmentation": "--segmentation", "fill": "--fill", "mode": "--mode", "targets": "--targets",
                      "seed": "--seed", "mask_design": "--mask-design"}


def null_count(setup: Setup, zoo: Zoo | None) -> int:
    """How many unrelated models a run of ``setup`` will compute: the zoo's matched null, or the named ones."""
    if setup.automatic_null and zoo is not None:
        names = [choice.spec.removeprefix("zoo:").partition("@")[0] for choice in (setup.model_a, setup.model_b)]
        try:
            return len(matched_null(zoo, names[0], names[1]).models)
        except ValueError:  # the run will say why
            return 0
    return len(setup.unrelated)


def budget_plan(setup: Setup) -> tuple[int, int] | None:
    """(N, L) that the setup's budget buys on its reference images, or None when that cannot be known yet."""
    if not setup.budget or not setup.refset.ready:
        return None
    return _budget_plan(setup.refset, json.dumps(setup.config.to_dict(), sort_keys=True), setup.budget)


@st.cache_data(show_spinner=False, max_entries=32)
def _budget_plan(refset: RefChoice, config: str, budget: int) -> tuple[int, int] | None:
    try:
        _, _, plan = apply_budget(budget, refset.load(), ZestConfig.from_dict(json.loads(config)))
    except ValueError:  # a budget too small, images not readable: the run says why
        return None
    return plan.images, plan.samples


def _digest(values: Any) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:24]


# --------------------------------------------------------------------------------------------------
# Defaults (which depend on the zoo) and the Setup from session state
# --------------------------------------------------------------------------------------------------


def zoo_defaults(zoo: Zoo | None) -> dict[str, Any]:
    """Per-model defaults: a zoo source model as A and one of its children as B, when there is a zoo.

    No unrelated model is named by default: the zoo's own models get their matched null from the
    manifest, and for other models only the user knows which models are trained independently for
    the suspect's task with its architecture.
    """
    if zoo is None:
        return {"a_source": "Path", "b_source": "Path", "a_zoo": None, "b_zoo": None}
    names = list(zoo.entries)
    sources = [n for n in names if zoo.entries[n].relation == "source" and zoo.entries[n].task == "digits"]
    first = sources[0] if sources else names[0]
    children = [child for src, child, _ in zoo.pairs() if src == first and zoo.entries[child].task == "digits"]
    second = children[0] if children else next((n for n in names if n != first), first)
    return {"a_source": "Demo zoo", "b_source": "Demo zoo", "a_zoo": first, "b_zoo": second}


def apply_defaults(zoo: Zoo | None) -> None:
    """Put every setup key's default into session state (once; again when a choice became invalid)."""
    for key, value in DEFAULTS.items():
        default(key, value)
    per_model = zoo_defaults(zoo)
    for slot in ("a", "b"):
        default(f"{slot}_source", per_model[f"{slot}_source"], SOURCES)
        if zoo is not None:
            default(f"{slot}_zoo", per_model[f"{slot}_zoo"], list(zoo.entries))
            default(f"{slot}_epoch", FINAL, [FINAL] + [f"epoch{k}" for k in services.zoo_checkpoints(
                zoo, st.session_state[f"{slot}_zoo"])])
        default(f"{slot}_path", "")
        default(f"{slot}_url", "")
        # The architectures list imports torchvision (seconds): checked only for a value other than "auto".
        arch = st.session_state.get(f"{slot}_arch")
        default(f"{slot}_arch", "auto", None if arch in (None, "auto") else ["auto", *uploads.upload_architectures()])
    names = set(zoo.entries) if zoo is not None else set()
    picked = st.session_state.get("null_zoo")
    if picked is None or any(n not in names for n in picked):  # a rebuilt zoo may lack a model picked before
        st.session_state["null_zoo"] = [n for n in picked or [] if n in names]
    default("null_specs", "")


def model_choice(slot: str, zoo: Zoo | None) -> ModelChoice | None:
    """Model A's or B's choice from session state, or None when it is incomplete."""
    prefix = slot.lower()
    state = st.session_state
    source = state.get(f"{prefix}_source")
    if source == "Demo zoo":
        name = state.get(f"{prefix}_zoo")
        if zoo is None or name not in zoo.entries:
            return None
        epoch = state.get(f"{prefix}_epoch", FINAL)
        suffix = "" if epoch in (FINAL, None) else f"@{epoch}"
        return ModelChoice(label=f"{name}{suffix}", spec=f"zoo:{name}{suffix}", kind="zoo")
    if source == "Upload":
        upload = state.get(f"{prefix}_upload_file")
        if upload is None:
            return None
        name, data = upload
        path = uploads.save_upload(name, data)
        arch = state.get(f"{prefix}_arch", "auto")
        spec = str(path) if arch == "auto" else f"{arch}:{path}"
        return ModelChoice(label=name, spec=spec, kind="upload")
    if source == "Path":
        text = (state.get(f"{prefix}_path") or "").strip()
        return ModelChoice(label=short_label(text), spec=text, kind="path") if text else None
    if source == "HTTP endpoint":
        url = (state.get(f"{prefix}_url") or "").strip()
        return ModelChoice(label=url, spec=url, kind="endpoint") if url else None
    return None


def short_label(spec: str) -> str:
    """A model spec without its folders: ``small_cnn:/runs/a/w.pt`` → ``small_cnn:w.pt``."""
    arch, separator, path = spec.partition(":")
    if separator and arch.isidentifier() and not Path(spec).exists():
        return f"{arch}:{Path(path).name}" if path else spec
    return Path(spec).name or spec


def current_setup(zoo: Zoo | None) -> Setup:
    """The setup in session state (defaults where nothing was chosen)."""
    apply_defaults(zoo)
    state = st.session_state
    size = (int(state["ref_height"]), int(state["ref_width"])) if state["ref_resize"] else None
    uploads = tuple((name, hashlib.sha256(data).hexdigest()) for name, data in state.get("ref_upload_files", ()))
    seed = int(state["seed"])
    refset = RefChoice(
        source=state["ref_source"], n=int(state["n"]), seed=seed, folder=(state["ref_folder"] or "").strip(),
        size=size, uploads=uploads if state["ref_source"] == REF_SOURCES[2] else (),
    )
    config = ZestConfig(
        num_samples=int(state["num_samples"]), segmentation=state["segmentation"], fill=state["fill"],
        mode=state["mode"], seed=seed,
    )
    return Setup(
        model_a=model_choice("A", zoo), model_b=model_choice("B", zoo), refset=refset, config=config,
        metric=state["metric"], align=state["align"], seed=seed, unrelated=named_unrelated(),
        n_boot=int(state["n_boot"]), level=float(state["level"]), budget=int(state["budget"]),
        input_adapter=bool(state["input_adapter"]),
    )


def named_unrelated() -> tuple[tuple[str, str], ...]:
    """(name, spec) of every unrelated model named on Setup: the zoo models picked, then one spec a line."""
    state = st.session_state
    specs = [f"zoo:{name}" for name in state.get("null_zoo", [])]
    specs += [line.strip() for line in (state.get("null_specs") or "").splitlines() if line.strip()]
    named: dict[str, str] = {}
    for spec in dict.fromkeys(specs):  # each model once, in the order given
        name = spec.removeprefix("zoo:") if spec.startswith("zoo:") else short_label(spec)
        named[name if name not in named else spec] = spec
    return tuple(named.items())


# --------------------------------------------------------------------------------------------------
# Widgets
# --------------------------------------------------------------------------------------------------


def model_controls(slot: str, zoo: Zoo | None, zoo_message: str) -> None:
    """The widgets choosing model A or B."""
    prefix = slot.lower()
    st.subheader(f"Model {slot}")
    source = st.radio("Source", SOURCES, key=f"{prefix}_source", horizontal=True)
    if source == "Demo zoo":
        if zoo is None:
            st.info(zoo_message)
            return
        st.selectbox("Zoo model", list(zoo.entries), key=f"{prefix}_zoo",
                     format_func=lambda n: services.zoo_label(zoo, n))
        epochs = services.zoo_checkpoints(zoo, st.session_state[f"{prefix}_zoo"])
        if epochs:
            default(f"{prefix}_epoch", FINAL, [FINAL] + [f"epoch{k}" for k in epochs])
            st.selectbox("Checkpoint", [FINAL] + [f"epoch{k}" for k in epochs], key=f"{prefix}_epoch")
        else:
            st.session_state[f"{prefix}_epoch"] = FINAL
        entry = zoo.entries[st.session_state[f"{prefix}_zoo"]]
        if entry.description:
            st.caption(entry.description)
    elif source == "Upload":
        upload = st.file_uploader(
            "TorchScript, ONNX, state_dict or safetensors file", type=MODEL_FILE_TYPES, key=f"{prefix}_upload",
            help="A state_dict or safetensors file needs its architecture below; whole pickled models are refused "
                 "(unpickling runs code). A Hugging Face or timm model folder goes in the Path box.",
        )
        if upload is not None:
            st.session_state[f"{prefix}_upload_file"] = (upload.name, upload.getvalue())
        st.selectbox(
            "Format", ["auto", *uploads.upload_architectures()], key=f"{prefix}_arch",
            format_func=lambda a: "TorchScript or ONNX (auto)" if a == "auto" else f"state_dict of {a}",
            help="A state_dict holds weights only: choose the architecture they belong to (this project's networks, "
                 "or any torchvision classification model).",
        )
        kept = st.session_state.get(f"{prefix}_upload_file")
        if upload is None and kept is not None:
            st.caption(f"Using the file uploaded before: {kept[0]} ({len(kept[1]):,} bytes)")
    elif source == "Path":
        st.text_input(
            "Model file or spec", key=f"{prefix}_path",
            placeholder="model.onnx · resnet18:w.safetensors · timm:resnet18:w.safetensors · hf-folder/ · zoo:cnn-s0",
            help="A model file; ARCH:WEIGHTS (.pt or .safetensors; this project's or a torchvision architecture); "
                 "timm:NAME:WEIGHTS; a Hugging Face image-classification or timm model folder (config.json and "
                 "model.safetensors, loaded offline); or zoo:NAME[@epochK].",
        )
    else:
        st.text_input("Endpoint URL", key=f"{prefix}_url", placeholder="http://127.0.0.1:8000/predict",
                      help="The JSON protocol is documented in zest_core/sources/endpoint/protocol.py.")


def refset_controls() -> None:
    """The widgets choosing the reference images."""
    st.subheader("Reference images")
    source = st.radio("Images", REF_SOURCES, key="ref_source", horizontal=True)
    st.number_input("N (reference images)", min_value=1, max_value=1000, step=1, key="n",
                    help="Drawn stratified by class (built-in digits and class-subfolder folders).")
    if source == REF_SOURCES[1]:
        st.text_input("Folder", key="ref_folder", placeholder="/path/to/images (class subfolders give labels)")
    elif source == REF_SOURCES[2]:
        files = st.file_uploader("Images", type=IMAGE_FILE_TYPES, accept_multiple_files=True, key="ref_upload")
        if files:
            st.session_state["ref_upload_files"] = [(f.name, f.getvalue()) for f in files]
        kept = st.session_state.get("ref_upload_files")
        if not files and kept:
            st.caption(f"Using the {len(kept)} images uploaded before")
    if source != REF_SOURCES[0]:
        st.checkbox("Resize images", key="ref_resize")
        if st.session_state["ref_resize"]:
            left, right = st.columns(2)
            left.number_input("Height", min_value=8, max_value=512, step=1, key="ref_height")
            right.number_input("Width", min_value=8, max_value=512, step=1, key="ref_width")


def parameter_controls() -> None:
    """The widgets of the Zest parameters and of the comparison."""
    st.subheader("Parameters")
    left, middle, right = st.columns(3)
    budget = left.number_input(
        "Query budget per model (0: none)", min_value=0, max_value=10_000_000, step=500, key="budget",
        help="At most this many queries per model: the first N reference images × L maskings, chosen by the rule "
             "measured by `zest bench budget` (README, Query budgets). 0 uses all N images with the L below.")
    planned = budget_plan(current_setup(None)) if budget else None
    if budget:  # the L that will be used: the budget's, not the L of the box it replaces
        st.session_state["num_samples_budgeted"] = planned[1] if planned else 0  # set each run: the plan changes
        left.number_input("L (masked samples per image)", disabled=True, key="num_samples_budgeted",
                          help=(f"Chosen by the budget: N = {planned[0]} images × L = {planned[1]} maskings."
                                if planned else "Chosen by the budget (the reference images are not ready yet)."))
    else:
        left.number_input("L (masked samples per image)", min_value=10, max_value=5000, step=50, key="num_samples")
    left.selectbox("Segmentation", SEGMENTATION_METHODS, key="segmentation")
    left.selectbox("Fill of hidden super-pixels", FILLS, key="fill")
    middle.selectbox("Local fit (mode)", MODES, key="mode",
                     help="zest: least squares without intercept (the authors' code); lime: LIME's kernel Ridge.")
    middle.selectbox("Metric", METRICS, key="metric")
    middle.selectbox("Class alignment", ALIGN_CHOICES, key="align",
                     help="auto matches classes (greedily) only when the class counts differ.")
    right.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="seed",
                       help="Seeds the reference draw, the masks and the bootstrap.")
    right.number_input("Bootstrap resamples", min_value=0, max_value=5000, step=50, key="n_boot",
                       help="Resamples of the reference images for the confidence interval (0: none).")
    right.select_slider("Confidence level", options=[0.8, 0.9, 0.95, 0.99], key="level")
    right.checkbox(services.ADAPTER_LABEL, key="input_adapter",
                   help="For a model that takes other images than the reference images: grey → RGB by replicating "
                        "the channel, RGB → grey by ITU-R 601 luma, and a bilinear resize to its size. Recorded in "
                        "the model's fingerprint (`--input-adapter` on the command line). Off, such a model is "
                        "refused: images are never converted silently.")


def null_controls(zoo: Zoo | None, automatic: bool) -> None:
    """The widgets naming the unrelated models that a comparison of models outside the zoo is judged against."""
    st.subheader("Unrelated models (the null)")
    if automatic:
        st.caption("Both models come from the demo zoo: the matched null is picked from its manifest (models "
                   "trained from scratch for B's task with B's architecture, outside both lineages). The models "
                   "named here are used only for models outside the zoo.")
    else:
        st.caption(f"The verdict judges d(A, B) against d(A, U) for models U trained independently, from scratch, "
                   f"for B's task with B's architecture, and derived from neither A nor B. Name at least "
                   f"{MIN_NULL}; with fewer there is no calibrated verdict.")
    left, right = st.columns(2) if zoo is not None else (None, st.container())
    if zoo is not None:
        left.multiselect("Zoo models", zoo.independent(), key="null_zoo",
                         format_func=lambda n: f"{n} · {zoo.entries[n].task} · {zoo.entries[n].arch}",
                         help="Models of the demo zoo trained from scratch (task · architecture).")
    right.text_area("Model files, specs or endpoints (one a line)", key="null_specs", height=96,
                    placeholder="u1.pt\nsmall_cnn:/runs/u2/weights.pt\nhttp://127.0.0.1:8001/predict")


def render_controls(zoo: Zoo | None, zoo_message: str) -> Setup:
    """Draw every shared control and return the resulting setup."""
    apply_defaults(zoo)
    left, right = st.columns(2)
    with left:
        model_controls("A", zoo, zoo_message)
    with right:
        model_controls("B", zoo, zoo_message)
    st.divider()
    left, right = st.columns([1, 2])
    with left:
        refset_controls()
    with right:
        parameter_controls()
    setup = current_setup(zoo)
    st.divider()
    null_controls(zoo, setup.automatic_null)
    return setup


def missing_inputs(setup: Setup) -> Sequence[str]:
    """What the user still has to choose before a run."""
    missing = []
    if setup.model_a is None:
        missing.append("Model A")
    if setup.model_b is None:
        missing.append("Model B")
    if not setup.refset.ready:
        missing.append("the reference images")
    return missing

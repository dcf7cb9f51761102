"""Method settings: which PerSAM variant runs and how. Kept free of PyTorch, so the command line can
list the choices without loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

METHODS = ("persam", "persam-f")
DEFAULT_METHOD = "persam-f"
TARGET_POOLING = ("mean", "mean-max")


@dataclass(frozen=True)
class Settings:
    """Method switches. ``Settings()`` is the training-free PerSAM with persam's additions (the search over
    candidates and parts, edges); :meth:`for_method` the default per method, :meth:`paper` the paper's as
    published."""

    method: str = "persam"  # "persam" (training-free) or "persam-f" (fitted fusion of SAM's 3 masks)
    target: str = "mean"  # pooling of the reference features: "mean", or "mean-max" (mean/2 + max/2, PerSAM-F)
    guided_attention: bool = True  # modulate token-to-image attention with the confidence map
    semantic_prompt: bool = True  # add the target embedding to the prompt tokens
    negative_point: bool = True  # the least similar location as a background click
    refinements: int = 2  # cascaded post-refinement steps (0, 1 or 2)
    # A feature cell belongs to the reference object when this fraction of it lies inside the mask.
    feature_mask_threshold: float = 0.5
    fit_steps: int = 1000  # PerSAM-F: AdamW steps fitting the fusion weights
    fit_lr: float = 1e-3  # PerSAM-F: initial learning rate (cosine-annealed)
    # Where one-shot is hard, persam's search (persam.presence.find; measured in the README). Without a hint,
    # when the first mask's presence score is unsure, decode from up to this many peaks of the confidence map
    # and keep the best presence score (1: PerSAM's one peak) ...
    candidates: int = 4
    # ... then add the object's missing parts from where they match, when that raises the presence score
    complete_parts: bool = True
    zoom: bool = False  # decode again on a crop around the mask encoded at full resolution (+1 encoder pass)
    # persam's addition, on where the photo's pixels are at hand (PerSAM.segment, albums): the mask's outline
    # moved onto the photo's edges by a guided filter (persam.edges). False: SAM's upsampled mask as it is.
    edges: bool = True
    # persam's addition: the mask's outline cut at the logit level that best reproduces the reference mask's
    # outline (persam.outline; fitted on the reference, as PerSAM-F's weights are). False: SAM's cut at 0.
    fit_level: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.target not in TARGET_POOLING:
            raise ValueError(f"unknown target pooling {self.target!r}; choose one of {', '.join(TARGET_POOLING)}")
        if self.refinements not in (0, 1, 2):
            raise ValueError(f"refinements must be 0, 1 or 2, not {self.refinements}")
        if not 0.0 <= self.feature_mask_threshold < 1.0:
            raise ValueError("feature_mask_threshold must be in [0, 1)")
        if self.fit_steps < 0 or self.fit_lr <= 0:
            raise ValueError("fit_steps must be >= 0 and fit_lr > 0")
        if self.candidates < 1:
            raise ValueError("candidates must be at least 1")

    @classmethod
    def for_method(cls, method: str = DEFAULT_METHOD, **overrides) -> Settings:
        """Defaults for a method, with ``overrides``: both are the paper's choices. PerSAM-F pools the target
        as mean/2 + max/2 and prompts with the positive point only, without guided attention or semantic
        prompt (measured better than with them: ``bench/perseg.py --method persam-f --guided`` shows it)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        base = {"method": method}
        if method == "persam-f":
            base.update(PERSAM_F_DEFAULTS)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def paper(cls, method: str = DEFAULT_METHOD, **overrides) -> Settings:
        """The paper's method as published: :meth:`for_method` without persam's additions
        (:data:`PERSAM_ADDITIONS_OFF`), for reproducing its figures."""
        return cls.for_method(method, **{**PERSAM_ADDITIONS_OFF, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings {', '.join(sorted(unknown))}")
        return cls(**data)


# The paper's PerSAM-F. Adding PerSAM's guided attention, semantic prompt and negative point to it was
# measured and scores lower (perseg-mini, vit_t: mIoU 0.942 with them vs 0.949 without; see the README).
PERSAM_F_DEFAULTS: dict = {"target": "mean-max", "guided_attention": False, "semantic_prompt": False,
                           "negative_point": False}


#: persam's additions to the paper's method, switched off (Settings.paper): one peak, no parts, SAM's mask at 0.
PERSAM_ADDITIONS_OFF: dict = {"candidates": 1, "complete_parts": False, "edges": False, "fit_level": False}


#: Albums: a concept is present in a photo when its presence score is at least this x the score it gives its
#: own reference (persam.album; chosen on the album benchmark, see the README).
DEFAULT_PRESENCE = 0.7
#: the reference score assumed for concepts saved before theirs was recorded (a typical same-object score).
FALLBACK_REFERENCE_SCORE = 0.85

VIDEO_SCHEMES = ("persam", "paper", "per-frame")
DEFAULT_SCHEME = "persam"


@dataclass(frozen=True)
class VideoSettings:
    """How frames are linked. ``VideoSettings()`` is persam's default scheme."""

    scheme: str = DEFAULT_SCHEME  # "persam", "paper" or "per-frame" (see the module doc)
    box_margin: float = 0.05  # the previous box grows by this fraction of its width/height on every side
    box_prompt: bool = True  # give the grown previous box to the decoder as a box prompt
    mask_prompt: bool = False  # give the previous frame's logits to the decoder as a mask prompt
    recheck: float = 0.8  # score below recheck x the reference's: search the whole frame as well
    presence: float = 0.6  # absent when score < presence x the reference frame's own score

    def __post_init__(self) -> None:
        if self.scheme not in VIDEO_SCHEMES:
            raise ValueError(f"unknown video scheme {self.scheme!r}; choose one of {', '.join(VIDEO_SCHEMES)}")
        if self.box_margin < 0 or not 0 <= self.presence <= 1 or not 0 <= self.recheck <= 1:
            raise ValueError("box_margin must be >= 0; recheck and presence in [0, 1]")

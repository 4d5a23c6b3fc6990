"""The mechanism registry: every list of mechanism names in the package is derived from it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from product_noise.mechanisms import (
    MECHANISMS,
    GammaNorm,
    Gaussian,
    L2Mechanism,
    ProductNoise,
    _all_names,
    calibrate,
)
from product_noise.mechanisms.registry import (
    CONSUMERS,
    REGISTRY,
    MechanismRegistry,
    MechanismSpec,
    get_mechanism,
    mechanism_names,
    mechanism_specs,
    register_mechanism,
)

ROOT = Path(__file__).resolve().parents[1]


def _spec(name: str = "new_noise", **kw: object) -> MechanismSpec:
    kw.setdefault("aliases", (name.replace("_", "-"),) if "_" in name else ())
    return MechanismSpec(name, Gaussian, "a test mechanism", "verified", {"erm"}, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the built-ins
def test_builtins_in_registration_order() -> None:
    assert mechanism_names() == (
        "gaussian",
        "classic_gaussian",
        "product",
        "product_paper",
        "l2",
        "gamma",
    )
    assert {s.name: s.load() for s in mechanism_specs()} == {
        "gaussian": Gaussian,
        "classic_gaussian": Gaussian,
        "product": ProductNoise,
        "product_paper": ProductNoise,
        "l2": L2Mechanism,
        "gamma": GammaNorm,
    }


def test_harness_order_and_dash_spelling() -> None:
    assert mechanism_names("erm", spelling="dash", order="harness") == (
        "gaussian",
        "gamma",
        "product-paper",
        "product",
        "l2",
        "classic-gaussian",
    )
    assert mechanism_names("dpsgd", spelling="dash", order="harness") == (
        "gaussian",
        "product-paper",
        "product",
        "l2",
    )


def test_labels_agree_with_the_mechanism_table_and_the_harness() -> None:
    from product_noise.compare.config import KNOWN_MECHANISMS, target_label

    for spec in mechanism_specs():
        assert spec.calibration in ("verified", "claimed")
    for m in KNOWN_MECHANISMS:
        family, _, rest = m.partition("-")
        if family == "dpsgd":
            assert target_label(m) == get_mechanism(rest).calibration, m
        elif family == "erm":
            noise = rest.split("-", 1)[1]
            assert target_label(m) == get_mechanism(noise).calibration, m


# ------------------------------------------------------------------ every list is derived
def _examples_common():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import _common
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return _common


def test_every_list_equals_the_registry_derived_one() -> None:
    from product_noise.audit import result
    from product_noise.cli import common
    from product_noise.compare import config, mechanism_table
    from product_noise.erm import gridsearch, noise
    from product_noise.opacus import engine
    from product_noise.training import loop

    verified_dpsgd = mechanism_names("dpsgd", calibration="verified")
    assert MECHANISMS == {n: get_mechanism(n).load() for n in verified_dpsgd}
    assert tuple(MECHANISMS) == mechanism_names("table", calibration="verified")
    assert _all_names() == (*MECHANISMS, *mechanism_names("table", calibration="claimed"))
    assert common.MECHANISM_CHOICES == mechanism_names("table")
    assert common.MECHANISM_HELP == "; ".join(
        get_mechanism(n).help_text for n in mechanism_names("table")
    )
    assert engine.NOISE_CHOICES == verified_dpsgd
    assert gridsearch.NOISE_CHOICES == noise.NOISES == mechanism_names("erm")
    assert loop.NOISES == ("product", *(n for n in verified_dpsgd if n != "product"), "none")
    assert _examples_common().SCRIPT_NOISES == tuple(n for n in loop.NOISES if n != "l2")
    assert config.DPSGD_MECHANISMS == tuple(
        f"dpsgd-{n}" for n in mechanism_names("dpsgd", spelling="dash", order="harness")
    )
    assert config.ERM_NOISES == mechanism_names("erm", spelling="dash", order="harness")
    assert config.ALL_ERM == tuple(
        f"erm-{m}-{n}" for m in config.ERM_METHODS for n in config.ERM_NOISES
    )
    assert set(config.KNOWN_MECHANISMS) >= set(config.DPSGD_MECHANISMS) | set(config.ALL_ERM)
    assert result.MECHANISMS == (
        *mechanism_names("audit", spelling="dash", order="harness"),
        "dpmix",
    )
    assert mechanism_table.CALIBRATIONS == {
        n: get_mechanism(n).table_label for n in sorted(mechanism_names("table"))
    }


def test_the_derived_lists_keep_their_contents_and_order() -> None:
    """The values before the registry: help texts, choices and messages did not change."""
    from product_noise.audit import result
    from product_noise.cli import common
    from product_noise.compare import config, mechanism_table
    from product_noise.erm import gridsearch
    from product_noise.opacus import engine
    from product_noise.training import loop

    assert tuple(MECHANISMS) == ("gaussian", "product", "l2")
    assert _all_names() == ("gaussian", "product", "l2", "classic_gaussian", "product_paper")
    assert common.MECHANISM_CHOICES == (
        "gaussian",
        "classic_gaussian",
        "product",
        "product_paper",
        "l2",
    )
    assert common.MECHANISM_HELP == (
        "gaussian = analytic Gaussian (verified); classic_gaussian = Dwork-Roth formula "
        "(claimed, a theorem only for ε < 1); product = product noise calibrated on its exact "
        "profile (verified); product_paper = product noise at the paper's calibration (claimed, "
        "known false); l2 = ℓ2 mechanism (verified)"
    )
    assert engine.NOISE_CHOICES == ("gaussian", "product", "l2")
    assert gridsearch.NOISE_CHOICES == (
        "gaussian",
        "classic_gaussian",
        "product",
        "product_paper",
        "l2",
        "gamma",
    )
    assert loop.NOISES == ("product", "gaussian", "l2", "none")
    assert _examples_common().SCRIPT_NOISES == ("product", "gaussian", "none")
    assert config.DPSGD_MECHANISMS == (
        "dpsgd-gaussian",
        "dpsgd-product-paper",
        "dpsgd-product",
        "dpsgd-l2",
    )
    assert config.GROUPS["erm"] == tuple(
        f"erm-{m}-{n}"
        for m in ("output", "objective", "amp")
        for n in ("gaussian", "gamma", "product-paper", "product")
    )
    assert result.MECHANISMS == ("gaussian", "product-paper", "product", "l2", "dpmix")
    assert list(mechanism_table.CALIBRATIONS.items()) == [
        ("classic_gaussian", "claimed (classic)"),
        ("gaussian", "verified"),
        ("l2", "verified"),
        ("product", "verified"),
        ("product_paper", "claimed (paper)"),
    ]


def test_core_calibrate_error_is_unchanged() -> None:
    with pytest.raises(ValueError, match="choose one of gaussian, product, l2, classic_gaussian"):
        calibrate("nope", 1.0, 1e-5, 10)


# ------------------------------------------------------------------ look-up
@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("product_paper", "product_paper"),
        ("product-paper", "product_paper"),
        ("classic_gaussian", "classic_gaussian"),
        ("classic-gaussian", "classic_gaussian"),
        ("gamma", "gamma"),
    ],
)
def test_aliases_resolve(spelling: str, name: str) -> None:
    assert get_mechanism(spelling).name == name
    assert spelling in REGISTRY


def test_every_dash_spelling_resolves() -> None:
    for consumer in CONSUMERS:
        for dash in mechanism_names(consumer, spelling="dash"):
            assert get_mechanism(dash).dash == dash


@pytest.mark.parametrize("bad", ["nope", "Gaussian", "", None, 3])
def test_unknown_name_lists_the_valid_names(bad: object) -> None:
    with pytest.raises(ValueError, match="unknown mechanism") as info:
        get_mechanism(bad)  # type: ignore[arg-type]
    assert ", ".join(mechanism_names()) in str(info.value)


def test_bad_arguments_of_mechanism_names() -> None:
    with pytest.raises(ValueError, match="unknown consumer 'x'; choose one of dpsgd"):
        mechanism_names("x")
    with pytest.raises(ValueError, match="spelling"):
        mechanism_names(spelling="camel")
    with pytest.raises(ValueError, match="order"):
        mechanism_names(order="random")
    with pytest.raises(ValueError, match="calibration"):
        mechanism_names(calibration="estimate")


# ------------------------------------------------------------------ registration
def test_duplicate_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'gaussian' is already registered"):
        register_mechanism(_spec("gaussian"))
    reg = MechanismRegistry()
    reg.register(_spec())
    with pytest.raises(ValueError, match="'new_noise' is already registered"):
        reg.register(_spec())
    assert len(reg) == 1


def test_alias_clash_is_refused() -> None:
    with pytest.raises(ValueError, match="'product-paper' is an alias of 'product_paper'"):
        register_mechanism(_spec("mine", aliases=("product-paper",)))
    reg = MechanismRegistry()
    reg.register(_spec("a_b"))
    with pytest.raises(ValueError, match="'a-b' is an alias of 'a_b'"):
        reg.register(_spec("c", aliases=("a-b",)))
    with pytest.raises(ValueError, match="twice"):
        reg.register(_spec("d", aliases=("e", "e")))
    with pytest.raises(ValueError, match="already registered"):  # a name taken as an alias
        reg.register(_spec("a", aliases=("a_b",)))
    assert reg.names() == ("a_b",)  # a refused spec leaves nothing behind
    assert "gaussian" in REGISTRY and "mine" not in REGISTRY


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": "Bad Name"}, "lower case"),
        ({"calibration": "estimate"}, "calibration of"),
        ({"consumers": {"web"}}, "unknown consumers"),
        ({"calibration": "claimed"}, "names its claim"),
        ({"mechanism": "no.colon"}, "module:attribute"),
        ({"name": "two_words", "aliases": ()}, "dash spelling"),
    ],
)
def test_bad_specs_are_refused(kw: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "name": "ok",
        "mechanism": Gaussian,
        "description": "d",
        "calibration": "verified",
        "consumers": {"erm"},
    }
    args.update(kw)
    with pytest.raises(ValueError, match=message):
        MechanismSpec(**args)  # type: ignore[arg-type]


def test_lazy_class_path_loads_on_demand() -> None:
    reg = MechanismRegistry()
    spec = reg.register(
        MechanismSpec(
            "lazy_gamma",
            "product_noise.mechanisms.l2:GammaNorm",
            "Gamma-norm, named by path",
            "verified",
            {"erm"},
            aliases=("lazy-gamma",),
        )
    )
    assert spec.load() is GammaNorm
    assert reg.get("lazy-gamma") is spec


def test_specs_are_frozen() -> None:
    spec = get_mechanism("gaussian")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert isinstance(spec.consumers, frozenset)


# ------------------------------------------------------------------ user mechanisms, live
def test_a_mechanism_registered_after_import_is_in_every_live_list() -> None:
    """Every consumer reads the registry at use time: a name registered after all modules are
    imported appears in each list (and leaves with it); the built-in constants do not move."""
    from product_noise.audit import result
    from product_noise.cli import common
    from product_noise.compare import config, mechanism_table
    from product_noise.erm import noise
    from product_noise.mechanisms import SGG
    from product_noise.opacus import families
    from product_noise.training import loop

    live = {
        "engine": families.noise_choices,
        "loop": loop.noises,
        "erm": noise.noise_choices,
        "cli": common.mechanism_choices,
        "table": lambda: tuple(mechanism_table.calibrations()),
        "audit": result.audit_mechanisms,
        "compare-dpsgd": config.dpsgd_mechanisms,
        "compare-erm": config.all_erm,
        "compare-known": config.known_mechanisms,
    }
    before = {k: f() for k, f in live.items()}
    register_mechanism("late_l2", radial=lambda d: SGG(d, d - 1.0, 1.0, 1.0))
    expect = {
        "engine": "late_l2",
        "loop": "late_l2",
        "erm": "late_l2",
        "cli": "late_l2",
        "table": "late_l2",
        "audit": "late-l2",
        "compare-dpsgd": "dpsgd-late-l2",
        "compare-erm": "erm-output-late-l2",
        "compare-known": "dpsgd-late-l2",
    }
    for k, f in live.items():
        assert expect[k] in f(), k
        assert expect[k] not in before[k], k
    assert "late_l2" in common.mechanism_help() and "late_l2" in MECHANISMS
    assert "dpsgd-late-l2" in config.groups()["user"]
    assert "dpsgd-late-l2" not in config.groups()["dpsgd"]  # user ones are named, or "user"
    REGISTRY.unregister("late_l2")
    assert {k: f() for k, f in live.items()} == before

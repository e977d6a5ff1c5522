"""The environments file: strict to read, and the three environments the design names."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from oms_infra.profile import ProfileError, environments, load_profile

from tests.infra.synthesis import ENVIRONMENTS, ENVIRONMENTS_FILE, INFRA, profile_of

pytestmark = pytest.mark.infra


def _write_variant(tmp_path: Path, edit: str, replacement: str) -> Path:
    text = ENVIRONMENTS_FILE.read_text()
    assert edit in text, edit
    variant = tmp_path / "environments.toml"
    variant.write_text(text.replace(edit, replacement, 1))
    return variant


def test_environments_file_defines_dev_prod_and_cost() -> None:
    assert environments(ENVIRONMENTS_FILE) == ENVIRONMENTS


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_each_environment_loads(name: str) -> None:
    profile = profile_of(name)  # prod with a certificate: see the next test
    assert profile.name == name
    assert profile.prefix == f"oms-{name}"


def test_load_when_prod_has_no_certificate_then_refused_naming_the_key() -> None:
    with pytest.raises(ProfileError, match=r"edge\.https_only.*set edge\.certificate_arn"):
        load_profile("prod", ENVIRONMENTS_FILE)


def test_load_when_an_override_is_given_then_it_replaces_the_files_value() -> None:
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/x"
    prod = load_profile("prod", ENVIRONMENTS_FILE, {"edge.certificate_arn": certificate})
    assert prod.edge.certificate_arn == certificate
    assert prod.edge.https_only is True


def test_load_when_an_override_has_the_wrong_type_then_refused() -> None:
    with pytest.raises(ProfileError, match=r"prod\.edge\.certificate_arn must be a str"):
        load_profile("prod", ENVIRONMENTS_FILE, {"edge.certificate_arn": 42})


def test_load_when_an_unknown_documentdb_class_then_refused_naming_the_known_ones(
    tmp_path: Path,
) -> None:
    path = _write_variant(tmp_path, 'instance_class = "db.t3.medium"', 'instance_class = "db.x9"')
    with pytest.raises(ProfileError, match=r"documentdb\.instance_class: one of db\.t3\.medium"):
        load_profile("dev", path)


def test_load_when_the_storage_ceiling_is_below_the_volume_then_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "broker_volume_max_gib = 100", "broker_volume_max_gib = 10")
    with pytest.raises(ProfileError, match="broker_volume_max_gib must be between"):
        load_profile("dev", path)


def test_cost_profile_is_the_cost_optimized_one() -> None:
    cost = load_profile("cost", ENVIRONMENTS_FILE)
    assert cost.network.nat == "instance"
    assert cost.eks.node_capacity == "SPOT"
    assert cost.kafka.mode == "self-hosted"


def test_prod_keeps_state_in_s3_and_protects_its_data() -> None:
    prod = profile_of("prod")
    assert prod.backend.kind == "s3"
    assert prod.operations.deletion_protection
    assert prod.network.nat == "gateway-per-az"


def test_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"no environment 'staging'.*cost, dev, prod"):
        load_profile("staging", ENVIRONMENTS_FILE)


def test_unknown_key_is_refused_with_its_dotted_name(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "[dev.redis]\n", '[dev.redis]\ncolour = "red"\n')
    with pytest.raises(ProfileError, match=r"dev\.redis: unknown key\(s\) colour"):
        load_profile("dev", path)


def test_missing_key_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, 'node_type = "cache.t4g.micro"\n', "")
    with pytest.raises(ProfileError, match=r"dev\.redis: missing key\(s\) node_type"):
        load_profile("dev", path)


def test_value_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "orders_partitions = 6", 'orders_partitions = "6"')
    with pytest.raises(ProfileError, match=r"dev\.kafka\.orders_partitions must be a int"):
        load_profile("dev", path)


def test_a_boolean_is_not_a_number(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "nodes = 1", "nodes = true")
    with pytest.raises(ProfileError, match=r"dev\.redis\.nodes must be a int"):
        load_profile("dev", path)


def test_fewer_brokers_than_replicas_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "brokers = 3", "brokers = 2")
    with pytest.raises(ProfileError, match="replication factor 3 needs as many"):
        load_profile("dev", path)


def test_more_replicas_than_partitions_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, "min_replicas = 1", "min_replicas = 7")
    with pytest.raises(ProfileError, match="min_replicas must be between 1 and"):
        load_profile("dev", path)


def test_s3_backend_without_a_bucket_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, 'kind = "local"', 'kind = "s3"')
    with pytest.raises(ProfileError, match="kind s3 needs bucket and region"):
        load_profile("dev", path)


def test_no_secret_is_written_in_the_environments_file() -> None:
    document = tomllib.loads(ENVIRONMENTS_FILE.read_text())
    keys = {
        key
        for env in document.values()
        for section in env.values()
        if isinstance(section, dict)
        for key in section
    }
    assert not {k for k in keys if "password" in k or "token" in k or "secret" in k}


def _main_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("infra_main", INFRA / "main.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_refuses_an_unknown_environment_before_starting_node(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENV", "staging")
    main = _main_module()
    status = main.main()
    assert status == 2
    assert "no environment 'staging'" in capsys.readouterr().err


def test_main_when_prod_has_no_certificate_then_exits_2_before_starting_node(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENV", "prod")
    monkeypatch.delenv("INFRA_CONFIG", raising=False)
    main = _main_module()
    status = main.main()
    assert status == 2
    assert "serves HTTPS only" in capsys.readouterr().err

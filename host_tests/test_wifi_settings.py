# The settings' "wifi" section (firmware/settings.py wifi_section(), parse())
# and the merge the set-up page saves with (update()): every key checked
# with its path, the rest of settings.json kept as it was, a file that is
# not JSON left alone, the write atomic. CPython (firmware/ in process).
import json
import os

import pytest

from fwproc import firmware_module

settings = firmware_module("settings")
schema = firmware_module("schema")


def test_defaults():
    s = settings.parse({})
    assert (s.wifi_ssid, s.wifi_password, s.wifi_hostname, s.wifi_ap_password) == ("", "", "", "")
    assert s.wifi_setup_after_ms == 5 * 60000 and s.ntp_server == "pool.ntp.org"


def test_a_full_section():
    s = settings.parse({"wifi": {"ssid": "home", "password": "p" * 63, "hostname": "Garage-BMS-2",
                                 "ap_password": "setup-pass", "setup_after_min": 0.5, "ntp_server": "10.0.0.1:1123"}})
    assert (s.wifi_ssid, s.wifi_hostname, s.wifi_ap_password, s.ntp_server) == \
        ("home", "Garage-BMS-2", "setup-pass", "10.0.0.1:1123")
    assert s.wifi_setup_after_ms == 30000
    assert settings.parse({"wifi": {"password": "f" * 64, "setup_after_min": 0, "ntp_server": ""}}).ntp_server == ""


@pytest.mark.parametrize("wifi, path", [
    ({"ssid": "é" * 17}, "wifi.ssid"),  # 34 bytes: an SSID is at most 32 bytes
    ({"ssid": 5}, "wifi.ssid"),
    ({"password": "seven77"}, "wifi.password"),  # WPA2: at least 8
    ({"password": "x" * 65}, "wifi.password"),
    ({"ap_password": "short"}, "wifi.ap_password"),
    ({"ap_password": "x" * 64}, "wifi.ap_password"),
    ({"hostname": "-bms"}, "wifi.hostname"),
    ({"hostname": "my bms"}, "wifi.hostname"),
    ({"hostname": "bms.local"}, "wifi.hostname"),  # one label: mDNS adds .local
    ({"setup_after_min": -1}, "wifi.setup_after_min"),
    ({"setup_after_min": 1441}, "wifi.setup_after_min"),
    ({"ntp_server": "pool ntp"}, "wifi.ntp_server"),
    ({"ntp_server": "pool.ntp.org:0"}, "wifi.ntp_server"),
    ({"ntp_server": "pool.ntp.org:http"}, "wifi.ntp_server"),
    ({"channel": 6}, "wifi.channel"),
])
def test_bad_values_are_named(wifi, path):
    with pytest.raises(schema.ConfigError) as e:
        settings.parse({"wifi": wifi})
    assert e.value.path == path, e.value


def test_load_reports_a_bad_wifi_section_and_uses_defaults(tmp_path):
    with open(tmp_path / "settings.json", "w") as f:
        json.dump({"api_token": "t" * 20, "wifi": {"password": "short"}}, f)
    s = settings.load(str(tmp_path) + "/")
    assert s.error.startswith("settings.json: wifi.password:") and s.api_token == "" and s.wifi_ssid == ""


def test_update_merges_and_keeps_the_rest(tmp_path):
    root = str(tmp_path) + "/"
    original = {"api_token": "t" * 20, "board": "esp32-devkitc", "link": {"poll_ms": 500},
                "wifi": {"ap_password": "setup-pass", "ssid": "old"}, "outputs": {"outputs": [{"mode": "off"}]}}
    with open(root + "settings.json", "w") as f:
        json.dump(original, f)
    settings.update(root, {"ssid": "home", "password": "home-pass-1", "hostname": "garage"})
    with open(root + "settings.json") as f:
        saved = json.load(f)
    expected = dict(original, wifi={"ap_password": "setup-pass", "ssid": "home", "password": "home-pass-1",
                                    "hostname": "garage"})
    assert saved == expected
    assert settings.parse(saved).wifi_ssid == "home"
    assert sorted(os.listdir(root)) == ["settings.json"]  # no temporary file left


def test_update_refuses_bad_values_and_changes_nothing(tmp_path):
    root = str(tmp_path) + "/"
    with open(root + "settings.json", "w") as f:
        f.write('{"api_token": "tttttttttttttttttttt"}')
    for wifi, token, path in (({"ssid": "home", "password": "short"}, None, "wifi.password"),
                              ({"ssid": "home"}, "too-short", "api_token")):
        with pytest.raises(schema.ConfigError) as e:
            settings.update(root, wifi, token)
        assert e.value.path == path
        with open(root + "settings.json") as f:
            assert f.read() == '{"api_token": "tttttttttttttttttttt"}'


def test_update_leaves_a_file_that_is_not_json_alone(tmp_path):
    root = str(tmp_path) + "/"
    with open(root + "settings.json", "w") as f:
        f.write('{"api_token": ')
    with pytest.raises(schema.ConfigError) as e:
        settings.update(root, {"ssid": "home"})
    assert "not valid JSON" in e.value.reason
    with open(root + "settings.json") as f:
        assert f.read() == '{"api_token": '


def test_update_starts_a_file_when_there_is_none(tmp_path):
    root = str(tmp_path) + "/"
    settings.update(root, {"ssid": "home", "password": "home-pass-1"}, "chosen-token-0123456789")
    with open(root + "settings.json") as f:
        assert json.load(f) == {"wifi": {"ssid": "home", "password": "home-pass-1"},
                                "api_token": "chosen-token-0123456789"}

"""Outbound /node links (PROTOCOL.md 3.1, 6.3): a node dials its
[[peers]], handshakes, and redials forever with backoff after any loss;
/health reports "no peers" only while configured peers are all down.
Real node processes on loopback."""
from conftest import health, metrics, wait_until_sync

TOKEN = "tok-hub-0123456789abcdef"


def hub_config(name="hub", port=0):
    return (f'[node]\nname = "{name}"\nlisten = "127.0.0.1:{port}"\n'
            f'token = "{TOKEN}"\n')


def leaf_config(hub_port, token=TOKEN):
    return ('[node]\nname = "leaf"\nlisten = "127.0.0.1:0"\n'
            '[mesh]\nreconnect_min_ms = 50\nreconnect_max_ms = 400\n'
            '[[peers]]\nname = "hub"\n'
            f'url = "ws://127.0.0.1:{hub_port}/node"\ntoken = "{token}"\n')


def healthy(n):
    return health(n)[1]["reason"]


def test_dials_handshakes_and_redials_after_loss(node_factory):
    hub = node_factory.start(config_text=hub_config())
    port = hub.port
    leaf = node_factory.start(config_text=leaf_config(port))
    wait_until_sync(lambda: metrics(leaf).get("wsrelay_peers_up") == 1,
                    what="leaf linked")
    assert metrics(hub).get("wsrelay_peers_up") == 1
    assert healthy(leaf) == "healthy"
    leaf.wait_log("node link 'hub' up")

    assert hub.stop() == []
    wait_until_sync(lambda: healthy(leaf) == "no peers", what="no peers")
    status, body = health(leaf)
    assert status == 200 and body["healthy"] == "degraded"

    hub2 = node_factory.start(config_text=hub_config(port=port))
    wait_until_sync(lambda: healthy(leaf) == "healthy", timeout=10,
                    what="redialled")
    assert metrics(hub2).get("wsrelay_peers_up") == 1


def test_no_peers_configured_is_never_no_peers(node_factory):
    n = node_factory.start()
    assert healthy(n) == "healthy"
    assert metrics(n).get("wsrelay_peers_configured") == 0


def test_wrong_token_keeps_redialling(node_factory):
    hub = node_factory.start(config_text=hub_config())
    leaf = node_factory.start(config_text=leaf_config(hub.port, token="wrong"))
    assert healthy(leaf) == "no peers"
    wait_until_sync(lambda: leaf.log_text().count("redialling") >= 3,
                    what="several redials")
    assert metrics(hub).get("wsrelay_peers_up") == 0
    assert healthy(leaf) == "no peers"

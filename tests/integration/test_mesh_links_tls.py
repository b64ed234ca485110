"""Outbound wss:// node links verify the peer's certificate (PROTOCOL.md 1):
against [tls] ca when it is set, else the system store. A certificate that
does not verify (untrusted, or not for the name dialled) fails the dial,
which is retried with backoff like any failed dial and never accepted; the
dialling node's log says why.

The hub is a TLS node with the session's self-signed certificate (for
127.0.0.1 and localhost, conftest.tls_cert); that certificate is its own
CA. Real node processes on loopback.
"""
import ssl

import pytest

from conftest import make_cert, wait_until_sync
from meshutil import TOKEN, api_node, mesh_config, peer_names, wait_peers_sync


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A second self-signed certificate, for the same names: a CA that did
    not sign the hub's certificate."""
    return make_cert(tmp_path_factory.mktemp("other-ca"))[0]


def tls_table(cert=None, key=None, ca=None):
    keys = {"cert": cert, "key": key, "ca": ca}
    return "\n[tls]\n" + "".join(f'{k} = "{v}"\n' for k, v in keys.items()
                                  if v is not None)


def start_hub(node_factory, tls_cert, host="127.0.0.1"):
    certf, keyf = tls_cert
    text = mesh_config("hub").replace('listen = "127.0.0.1:0"',
                                      f'listen = "{host}:0"')
    hub = node_factory.start(config_text=text + tls_table(certf, keyf),
                             ssl_context=ssl.create_default_context(
                                 cafile=str(certf)))
    hub.name = "hub"
    return hub


def start_leaf(node_factory, url, ca=None, tls_cert=None):
    """A node dialling url; with tls_cert it serves TLS itself too."""
    cert = key = None
    ctx = None
    if tls_cert:
        cert, key = tls_cert
        ctx = ssl.create_default_context(cafile=str(cert))
    text = mesh_config("leaf", peers=[("hub", url, TOKEN)])
    leaf = node_factory.start(config_text=text + tls_table(cert, key, ca),
                              ssl_context=ctx)
    leaf.name = "leaf"
    return leaf


@pytest.mark.parametrize("host,leaf_tls", [
    ("127.0.0.1", False),
    ("localhost", False),
    ("127.0.0.1", True),
], ids=["ip", "dns-name", "leaf-serves-tls"])
def test_wss_dial_verified_by_tls_ca_links(node_factory, tls_cert, host,
                                           leaf_tls):
    hub = start_hub(node_factory, tls_cert)
    leaf = start_leaf(node_factory, f"wss://{host}:{hub.port}/node",
                      ca=tls_cert[0], tls_cert=tls_cert if leaf_tls else None)
    wait_peers_sync([hub, leaf], {"hub": {"leaf"}, "leaf": {"hub"}},
                    exact=True)
    leaf.wait_log("node link 'hub' up \\(dialled\\)")
    assert "certificate refused" not in leaf.log_text()


def refused(hub, leaf, why):
    """The dial fails on the certificate, again and again (backoff), and
    no link ever comes up on either side."""
    wait_until_sync(lambda: leaf.log_text().count(why) >= 3,
                    what=f"three dials refused with {why!r}")
    assert peer_names(api_node(leaf)) == set()
    if hub.host == hub.connect_host:  # api_node reaches 127.0.0.1 only
        assert peer_names(api_node(hub)) == set()
    for n in (hub, leaf):
        assert "node link" not in n.log_text(), n.log_text()


def test_wss_dial_without_ca_uses_the_system_store(node_factory, tls_cert):
    hub = start_hub(node_factory, tls_cert)
    leaf = start_leaf(node_factory, f"wss://127.0.0.1:{hub.port}/node")
    refused(hub, leaf,
            "peer 'hub': certificate refused (checked against the system "
            "store): self-signed certificate, redialling")


def test_wss_dial_with_another_ca_is_refused(node_factory, tls_cert,
                                             other_ca):
    hub = start_hub(node_factory, tls_cert)
    leaf = start_leaf(node_factory, f"wss://127.0.0.1:{hub.port}/node",
                      ca=other_ca)
    refused(hub, leaf,
            "peer 'hub': certificate refused (checked against [tls] ca): "
            "self-signed certificate, redialling")


def test_wss_dial_to_a_name_not_in_the_certificate_is_refused(node_factory,
                                                              tls_cert):
    """Trusted certificate, wrong address: 127.0.0.2 is loopback too but
    not in the certificate."""
    hub = start_hub(node_factory, tls_cert, host="127.0.0.2")
    leaf = start_leaf(node_factory, f"wss://127.0.0.2:{hub.port}/node",
                      ca=tls_cert[0])
    refused(hub, leaf,
            "peer 'hub': certificate refused (checked against [tls] ca): "
            "IP address mismatch, redialling")


@pytest.mark.parametrize("content", [None, b"not a certificate\n"],
                         ids=["missing", "not-pem"])
def test_unusable_tls_ca_refuses_to_start(node_factory, tmp_path, content):
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    text = mesh_config("leaf") + tls_table(ca=ca)
    n = node_factory.start(config_text=text, wait=False)
    n.expect_clean_exit = False
    assert n.wait_exit(10) == 1
    assert f"[tls] ca '{ca}'" in n.log_text()

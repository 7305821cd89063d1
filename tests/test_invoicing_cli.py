"""The invoicing commands through ``aaa.cli.main``: the PDF a customer pays, JSON listings, and bad
input as one line on stderr with a non-zero exit."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pypdf
import pytest
from invoicing_support import PRICE, billing_data_fixture, by_login  # noqa: F401  (fixtures)

from aaa.cli import main
from billing import boleto, pix


@pytest.fixture
def config(billing_data, tmp_path):
    """A configuration file for the test database (and its key, so the CLI can decrypt)."""
    url = billing_data.settings.database.url
    key = billing_data.settings.path(billing_data.settings.security.key_file)
    path = tmp_path / "aaa.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n[security]\nkey_file = "{key}"\n'
        '[plugins.invoicing]\nbeneficiary_name = "Fibra Vale Telecom"\nbeneficiary_city = "Campinas"\n'
        'beneficiary_cnpj = "11.222.333/0001-81"\n'
    )
    return str(path)


def aaa(config, *args):
    return main(["--config", config, *args])


@pytest.fixture
def december(config, capsys):
    aaa(config, "billing", "run", "--cycle", "2026-12", "--date", "2026-12-01")
    capsys.readouterr()
    aaa(config, "invoice", "list", "--json")
    return by_login(json.loads(capsys.readouterr().out))


def pdf_text(path) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)


def test_invoice_pdf_has_the_linha_digitavel_and_the_pix_payload(config, december, tmp_path, capsys):
    maria = december["maria"]
    out = tmp_path / "fatura.pdf"
    aaa(config, "invoice", "pdf", str(maria["id"]), "-o", str(out))
    text = pdf_text(out)
    assert maria["linha_digitavel"] in text
    assert maria["pix_payload"] in text.replace("\n", "")
    assert "Maria da Silva" in text and "Rua das Flores, 123" in text and "Fibra Vale Telecom" in text
    assert "529.982.247-25" not in text, "the CPF is masked on the document"
    assert boleto.parse(maria["linha_digitavel"], today=dt.date(2026, 12, 1)).amount == Decimal(PRICE)
    assert pix.parse(maria["pix_payload"]).name == "Fibra Vale Telecom"


def test_billing_run_again_from_the_cli_issues_nothing(config, december, capsys):
    aaa(config, "billing", "run", "--cycle", "2026-12", "--date", "2026-12-01", "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["issued"] == 0 and result["already_issued"] == 2


def test_pay_show_second_copy_and_overdue_from_the_cli(config, december, capsys):
    joao = str(december["joao"]["id"])
    aaa(config, "invoice", "pay", joao, "--amount", "50,00", "--date", "14/12/2026")
    assert "balance 49.90; status open" in capsys.readouterr().out
    aaa(config, "billing", "overdue", "--date", "2026-12-16", "--json")
    assert json.loads(capsys.readouterr().out)["invoice_ids"] == [december["maria"]["id"], december["joao"]["id"]]
    aaa(config, "invoice", "show", joao, "--date", "2026-12-16", "--json")
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "overdue" and shown["owed"]["paid"] == "50.00" and shown["owed"]["fine"] == "2.00"
    due = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    aaa(config, "invoice", "second-copy", joao, "--due-date", due, "--json")
    copy = json.loads(capsys.readouterr().out)
    assert copy["parent_id"] == int(joao) and copy["due_date"] == due
    aaa(config, "invoice", "list", "--status", "renegotiated", "--json")
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [int(joao)]


def test_invoice_summary_counts_open_and_overdue_with_what_is_still_owed(config, december, capsys):
    aaa(config, "invoice", "pay", str(december["joao"]["id"]), "--amount", "50,00", "--date", "2026-12-05")
    aaa(config, "billing", "overdue", "--date", "2026-12-14")  # Maria's is overdue; João's not yet due
    capsys.readouterr()
    aaa(config, "invoice", "summary", "--json")
    summary = json.loads(capsys.readouterr().out)
    maria, joao = december["maria"], december["joao"]
    assert summary["enabled"] is True
    assert summary["overdue"] == {"count": 1, "amount": maria["amount"], "balance": maria["amount"], "earliest_due_date": maria["due_date"]}
    assert summary["open"]["count"] == 1 and summary["open"]["earliest_due_date"] == joao["due_date"]
    assert Decimal(summary["open"]["balance"]) == Decimal(joao["amount"]) - Decimal("50.00")
    aaa(config, "invoice", "summary")
    text = capsys.readouterr().out
    assert "overdue" in text and maria["amount"] in text and maria["due_date"] in text


def test_billing_import_return_from_the_cli(config, december, tmp_path, capsys):
    from billing import cnab240

    record = cnab240.PaymentRecord(
        nosso_numero=december["maria"]["nosso_numero"], occurrence="06", amount_paid=Decimal(PRICE),
        occurrence_date=dt.date(2026, 12, 9),
    )
    path = tmp_path / "ret.txt"
    path.write_text(cnab240.build_return_file([record], bank="001", generated=dt.date(2026, 12, 10)))
    aaa(config, "billing", "import-return", str(path))
    assert "1 payments recorded, 0 already imported, 0 not matched" in capsys.readouterr().out
    aaa(config, "billing", "import-return", str(path))
    assert "0 payments recorded, 1 already imported" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invoice", "show", "999"], "invoice 999 not found"),
        (["invoice", "show", "abc"], "invoice id must be a positive number"),
        (["invoice", "pay", "999", "--amount", "10"], "invoice 999 not found"),
        (["invoice", "pay", "{maria}", "--amount", "12,3,4"], "not an amount in reais: '12,3,4'"),
        (["invoice", "pay", "{maria}", "--amount", "10", "--date", "2026-13-01"], "invalid date '2026-13-01'"),
        (["invoice", "pay", "{joao}", "--amount", "10"], "invoice {joao} is cancelled and cannot be paid"),
        (["invoice", "second-copy", "{maria}", "--due-date", "amanhã"], "invalid due date 'amanhã'"),
        (["invoice", "list", "--status", "late"], "unknown invoice status 'late'"),
        (["billing", "run", "--cycle", "2026-13"], "billing cycle 2026-13 is not a valid month"),
        (["billing", "import-return", "/nonexistent/ret.txt"], "cannot read return file"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(config, december, capsys, args, message):
    aaa(config, "invoice", "cancel", str(december["joao"]["id"]))
    capsys.readouterr()
    ids = {"maria": december["maria"]["id"], "joao": december["joao"]["id"]}
    with pytest.raises(SystemExit) as exit_info:
        aaa(config, *[a.format(**ids) for a in args])
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aaa: error: ")
    assert message.format(**ids) in err


def test_charges_from_the_cli_land_on_the_invoice_and_its_pdf_once(config, tmp_path, capsys):
    aaa(config, "billing", "charge", "add", "maria", "--description", "Taxa de instalação", "--amount", "150,00", "--kind", "installation")
    assert "on the next invoice" in capsys.readouterr().out
    aaa(config, "billing", "charge", "add", "maria", "--description", "Desconto de fidelidade", "--amount", "10", "--kind", "discount")
    capsys.readouterr()
    aaa(config, "billing", "charge", "add", "joao", "--description", "Roteador", "--amount", "200", "--kind", "equipment", "--json")
    assert json.loads(capsys.readouterr().out)["status"] == "pending"
    aaa(config, "billing", "charge", "list", "--pending", "--json")
    pending = json.loads(capsys.readouterr().out)
    assert [(c["login"], c["kind"]) for c in pending] == [("joao", "equipment"), ("maria", "discount"), ("maria", "installation")]
    aaa(config, "billing", "charge", "remove", str(pending[0]["id"]))
    assert "removed (equipment 200.00 for joao)" in capsys.readouterr().out
    for _ in range(2):
        aaa(config, "billing", "run", "--cycle", "2026-12", "--date", "2026-12-01")
    capsys.readouterr()
    aaa(config, "invoice", "list", "--json")
    maria = by_login(json.loads(capsys.readouterr().out))["maria"]
    assert Decimal(maria["amount"]) == Decimal(PRICE) + Decimal("140.00")
    aaa(config, "billing", "charge", "list", "maria", "--json")
    assert {(c["status"], c["invoice_id"]) for c in json.loads(capsys.readouterr().out)} == {("invoiced", maria["id"])}
    out = tmp_path / "fatura.pdf"
    aaa(config, "invoice", "pdf", str(maria["id"]), "-o", str(out))
    text = pdf_text(out)
    assert text.count("Taxa de instalação") == 1 and "R$ 150,00" in text
    assert text.count("Desconto de fidelidade") == 1 and "-R$ 10,00" in text
    assert maria["linha_digitavel"] in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["maria", "--description", "x", "--amount", "1,2,3"], "aaa: error: not an amount in reais: '1,2,3'"),
        (["nobody", "--description", "x", "--amount", "10"], "aaa: error: subscriber 'nobody' not found"),
        (["maria", "--description", "x", "--amount", "10", "--kind", "gift"], "aaa: error: unknown charge kind 'gift'"),
        (["maria", "--description", "x", "--amount", "500", "--kind", "discount"], "aaa: error: a discount of 500.00 must be smaller"),
    ],
)
def test_bad_charges_are_one_line_and_store_nothing(config, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        aaa(config, "billing", "charge", "add", *args)
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    aaa(config, "billing", "charge", "list", "--json")
    assert json.loads(capsys.readouterr().out) == []


def test_removing_an_unknown_charge_is_one_line(config, capsys):
    with pytest.raises(SystemExit):
        aaa(config, "billing", "charge", "remove", "abc")
    assert capsys.readouterr().err == "aaa: error: charge id must be a positive number, got 'abc'\n"

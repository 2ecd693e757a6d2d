"""manage.py import_documents on a real folder."""

import pytest
from django.core.management import CommandError, call_command

from documents.models import Document
from documents.tests import files

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha text")
    (tmp_path / "b.md").write_text("# Beta")
    (tmp_path / "c.pdf").write_bytes(files.pdf_bytes(["Gamma page"]))
    (tmp_path / "d.docx").write_bytes(files.docx_bytes(["Delta para"]))
    (tmp_path / "ignored.gif").write_bytes(b"GIF89a....")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "e.html").write_text("<html><body><p>Epsilon</p></body></html>")
    return tmp_path


def docs(org):
    return {d.source_ref: d for d in Document.unscoped_objects.filter(org=org)}


def test_import_then_skip_unchanged_then_update(tenant, folder, capsys):
    call_command("import_documents", str(folder), "--org", "acme", "--no-progress")
    assert "imported 4, updated 0, skipped 0 unchanged, failed 0 (of 4 files)" in capsys.readouterr().out
    assert set(docs(tenant.org)) == {"a.txt", "b.md", "c.pdf", "d.docx"}
    assert docs(tenant.org)["c.pdf"].content == "Gamma page"

    call_command("import_documents", str(folder), "--org", "acme", "--recursive", "--no-progress")
    assert "imported 1, updated 0, skipped 4 unchanged" in capsys.readouterr().out
    assert docs(tenant.org)["sub/e.html"].content == "Epsilon"

    (folder / "a.txt").write_text("Alpha text, revised")
    call_command("import_documents", str(folder), "--org", "acme", "--recursive", "--no-progress")
    assert "imported 0, updated 1, skipped 4 unchanged" in capsys.readouterr().out
    assert docs(tenant.org)["a.txt"].content == "Alpha text, revised"
    assert Document.unscoped_objects.count() == 5


def test_failures_are_reported_and_exit_nonzero(tenant, folder, capsys):
    (folder / "broken.pdf").write_bytes(b"not a pdf at all")
    (folder / "empty.txt").write_text("   ")
    with pytest.raises(CommandError) as exc:
        call_command("import_documents", str(folder), "--org", "acme", "--no-progress")
    assert exc.value.returncode == 1
    output = capsys.readouterr()
    assert "failed 2" in output.out
    assert "broken.pdf: file_type_mismatch" in output.err
    assert "empty.txt: empty_document" in output.err
    imported = docs(tenant.org)
    assert "broken.pdf" not in imported  # refused on its first bytes: nothing stored
    assert imported["empty.txt"].status == "failed" and imported["empty.txt"].error["code"] == "empty_document"
    assert sum(d.status == "ready" for d in imported.values()) == 4  # the good files still went in


def test_custom_source_and_org_isolation(tenant, other_tenant, folder):
    call_command("import_documents", str(folder / "a.txt"), "--org", "globex", "--source", "archive", "--no-progress")
    assert docs(tenant.org) == {}
    (imported,) = docs(other_tenant.org).values()
    assert imported.source == "archive" and imported.source_ref == "a.txt"


def test_unknown_org_and_path(folder):
    with pytest.raises(CommandError, match="No organization"):
        call_command("import_documents", str(folder), "--org", "nope")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_documents", str(folder / "missing"), "--org", "nope")

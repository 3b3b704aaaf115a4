"""Chat-template checks: ordinary templates of popular families pass, known escapes are caught."""

from __future__ import annotations

import pytest

from assay.analyses.scan.templates import UnparsableTemplate, analyse_template

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "
    "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles "
    "are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}"
    "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
QWEN_TOOLS = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- for tool in tools %}{{- '\\n' }}"
    "{{- tool | tojson }}{%- endfor %}{%- endif %}{%- set ns = namespace(multi_step_tool=true, "
    "last_query_index=messages|length - 1) %}{%- for message in messages[::-1] %}"
    "{%- set index = (messages|length - 1) - loop.index0 %}{%- if ns.multi_step_tool and "
    "message.role == 'user' %}{%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = "
    "index %}{%- endif %}{%- endfor %}{%- for message in messages %}{{- '<|im_start|>' + "
    "message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}"
)
ZEPHYR = (
    "{% for message in messages %}\\n{% if message['role'] == 'user' %}\\n{{ '<|user|>\\n' + "
    "message['content'] + eos_token }}\\n{% elif message['role'] == 'system' %}\\n{{ '<|system|>\\n' + "
    "message['content'] + eos_token }}\\n{% endif %}\\n{% endfor %}"
)
DATED = "{{ strftime_now('%d %b %Y') }}{% for m in messages %}{{ m.content | e }}{% endfor %}"
SORTED = "{% for m in messages | selectattr('role', 'equalto', 'user') %}{{ m['content'] }}{% endfor %}"

BENIGN = [CHATML, LLAMA3, MISTRAL, GEMMA, QWEN_TOOLS, ZEPHYR, DATED, SORTED]

HOSTILE = [
    ("{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}", "TEMPLATE001"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "TEMPLATE001"),
    ("{{ self.__init__.__globals__.__builtins__ }}", "TEMPLATE001"),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "TEMPLATE001"),
    ("{{ lipsum.__globals__['os'].popen('id') }}", "TEMPLATE001"),
    ("{{ joiner.__init__.__globals__ }}", "TEMPLATE001"),
    ("{{ namespace.__init__.__globals__ }}", "TEMPLATE001"),
    ("{{ ()|attr('__cla' ~ 'ss__') }}", "TEMPLATE001"),
    ("{{ ()|attr(['__', 'class', '__']|join) }}", "TEMPLATE001"),
    ("{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}", "TEMPLATE001"),
    ("{{ ()|attr(('%c%c'|format(95, 95)) ~ 'class' ~ ('%c%c'|format(95, 95))) }}", "TEMPLATE001"),
    ("{{ ()|attr('__ssalc__'|reverse) }}", "TEMPLATE001"),
    ("{{ messages|map(attribute='__class__')|list }}", "TEMPLATE001"),
    ("{{ x|attr(name) }}", "TEMPLATE002"),
    ("{% include 'other.jinja' %}", "TEMPLATE002"),
    ("{% import 'macros' as m %}", "TEMPLATE002"),
    ("{{ self._TemplateReference__context }}", "TEMPLATE002"),
    ("{{ cycler.next }}", "TEMPLATE002"),
    ("{{ x.mro() }}", "TEMPLATE001"),
    ("{{ f.gi_frame.f_globals }}", "TEMPLATE001"),
]


@pytest.mark.parametrize("template", BENIGN)
def test_ordinary_templates_are_clean(template: str) -> None:
    assert analyse_template(template) == []


@pytest.mark.parametrize(("template", "rule"), HOSTILE)
def test_escapes_are_flagged(template: str, rule: str) -> None:
    issues = analyse_template(template)
    assert rule in {i.rule for i in issues}, issues
    assert all(i.line == 1 for i in issues)


def test_unparsable_template() -> None:
    with pytest.raises(UnparsableTemplate):
        analyse_template("{% for x in %}")


def test_huge_template_is_not_analysed() -> None:
    (issue,) = analyse_template("a" * 2000, max_bytes=1000)
    assert issue.rule == "TEMPLATE002"


def test_a_template_in_gguf_metadata_is_scanned(tmp_path) -> None:
    gguf = pytest.importorskip("gguf")
    import numpy as np

    from assay.api import scan_file
    for name, tpl, expect in (("ok.gguf", CHATML, set()), ("bad.gguf", HOSTILE[1][0], {"TEMPLATE001"})):
        w = gguf.GGUFWriter(str(tmp_path / name), "llama")
        w.add_chat_template(tpl)
        w.add_tensor("w", np.ones(4, np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        res = scan_file(str(tmp_path / name))
        assert {f.rule for f in res.findings} == expect and res.status != "error"


def test_a_template_met_again_is_not_analysed_again() -> None:
    from assay.analyses.scan import templates
    text = "{{ ''.__class__.__mro__[1].__subclasses__() }} {# met twice in this test #}"
    before = templates._analyse_cached.cache_info()
    first = analyse_template(text)
    second = analyse_template(text)
    after = templates._analyse_cached.cache_info()
    assert first == second and first and {i.rule for i in first} == {"TEMPLATE001"}
    assert after.misses == before.misses + 1 and after.hits == before.hits + 1
    first.clear()                                  # a caller's list is its own
    assert analyse_template(text) == second

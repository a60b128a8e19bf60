# Fills in `expected` in chat_template_cases.json by rendering each case with Python jinja2 set up as
# transformers' apply_chat_template sets it up (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
# loopcontrols, its tojson and raise_exception). A tool to re-derive the test data, not run by the tests:
#   python3 test/models/common/chat_template_cases.py <checkpoint>/chat_template.jinja test/models/common/chat_template_cases.json
import json
import sys
from datetime import datetime

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)

template_path, cases_path = sys.argv[1], sys.argv[2]
template = env.from_string(open(template_path, encoding="utf-8").read())
data = json.load(open(cases_path, encoding="utf-8"))
special_tokens = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None}
for case in data["cases"]:
    case["expected"] = template.render(
        messages=case["messages"],
        tools=case.get("tools"),
        documents=None,
        add_generation_prompt=case.get("add_generation_prompt", False),
        **special_tokens,
        **case.get("kwargs", {}),
    )
with open(cases_path, "w", encoding="utf-8") as f:
    json.dump(data, f, ensure_ascii=False, indent=2)
    f.write("\n")

"""Chat-template analysis (TEMPLATE001 / TEMPLATE002): real templates of popular model families are
clean, known sandbox escapes and their string-built variants are flagged, and hostile inputs are
bounded. The template text is only ever parsed, never rendered.

The real templates below are verbatim chat templates of the named models, as quoted by the
huggingface.js test suite (from the models' tokenizer_config.json) or as embedded in the models'
GGUF files (huggingface.js ollama-utils automap).
"""

from __future__ import annotations

import dataclasses
import time

import jinja2
import pytest

from assay.analyses.scan import templates
from assay.analyses.scan.templates import TemplateIssue, UnparsableTemplate, analyse_template

# meta-llama/Llama-3.1-8B-Instruct: tools, strftime_now, raise_exception, tojson.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
LLAMA_3_1 = (
    '{{- bos_token }}\n'
    '{%- if custom_tools is defined %}\n'
    '    {%- set tools = custom_tools %}\n'
    '{%- endif %}\n'
    '{%- if not tools_in_user_message is defined %}\n'
    '    {%- set tools_in_user_message = true %}\n'
    '{%- endif %}\n'
    '{%- if not date_string is defined %}\n'
    '    {%- set date_string = "26 Jul 2024" %}\n'
    '{%- endif %}\n'
    '{%- if not tools is defined %}\n'
    '    {%- set tools = none %}\n'
    '{%- endif %}\n'
    '\n'
    '{#- This block extracts the system message, so we can slot it into the right place. #}\n'
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content']|trim %}\n"
    '    {%- set messages = messages[1:] %}\n'
    '{%- else %}\n'
    '    {%- set system_message = "" %}\n'
    '{%- endif %}\n'
    '\n'
    '{#- System message + builtin tools #}\n'
    '{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}\n'
    '{%- if builtin_tools is defined or tools is not none %}\n'
    '    {{- "Environment: ipython\\n" }}\n'
    '{%- endif %}\n'
    '{%- if builtin_tools is defined %}\n'
    '    {{- "Tools: " + builtin_tools | reject(\'equalto\', \'code_interpreter\') | join(", ") + "\\n'
    '\\n"}}\n'
    '{%- endif %}\n'
    '{{- "Cutting Knowledge Date: December 2023\\n" }}\n'
    '{{- "Today Date: " + date_string + "\\n\\n" }}\n'
    '{%- if tools is not none and not tools_in_user_message %}\n'
    '    {{- "You have access to the following functions. To call a function, please respond with JSON '
    'for a function call." }}\n'
    '    {{- \'Respond in the format {"name": function name, "parameters": dictionary of argument name '
    "and its value}.' }}\n"
    '    {{- "Do not use variables.\\n\\n" }}\n'
    '    {%- for t in tools %}\n'
    '        {{- t | tojson(indent=4) }}\n'
    '        {{- "\\n\\n" }}\n'
    '    {%- endfor %}\n'
    '{%- endif %}\n'
    '{{- system_message }}\n'
    '{{- "<|eot_id|>" }}\n'
    '\n'
    '{#- Custom tools are passed in a user message with some extra guidance #}\n'
    '{%- if tools_in_user_message and not tools is none %}\n'
    '    {#- Extract the first user message so we can plug it in here #}\n'
    '    {%- if messages | length != 0 %}\n'
    "        {%- set first_user_message = messages[0]['content']|trim %}\n"
    '        {%- set messages = messages[1:] %}\n'
    '    {%- else %}\n'
    '        {{- raise_exception("Cannot put tools in the first user message when there\'s no first use'
    'r message!") }}\n'
    '{%- endif %}\n'
    "    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n"
    '    {{- "Given the following functions, please respond with a JSON for a function call " }}\n'
    '    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}\n'
    '    {{- \'Respond in the format {"name": function name, "parameters": dictionary of argument name '
    "and its value}.' }}\n"
    '    {{- "Do not use variables.\\n\\n" }}\n'
    '    {%- for t in tools %}\n'
    '        {{- t | tojson(indent=4) }}\n'
    '        {{- "\\n\\n" }}\n'
    '    {%- endfor %}\n'
    '    {{- first_user_message + "<|eot_id|>"}}\n'
    '{%- endif %}\n'
    '\n'
    '{%- for message in messages %}\n'
    "    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}"
    '\n'
    "        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'"
    "] | trim + '<|eot_id|>' }}\n"
    "    {%- elif 'tool_calls' in message %}\n"
    '        {%- if not message.tool_calls|length == 1 %}\n'
    '            {{- raise_exception("This model only supports single tool-calls at once!") }}\n'
    '        {%- endif %}\n'
    '        {%- set tool_call = message.tool_calls[0].function %}\n'
    '        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}\n'
    "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    '            {{- "<|python_tag|>" + tool_call.name + ".call(" }}\n'
    '            {%- for arg_name, arg_val in tool_call.arguments | items %}\n'
    '                {{- arg_name + \'="\' + arg_val + \'"\' }}\n'
    '                {%- if not loop.last %}\n'
    '                    {{- ", " }}\n'
    '                {%- endif %}\n'
    '                {%- endfor %}\n'
    '            {{- ")" }}\n'
    '        {%- else  %}\n'
    "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    '            {{- \'{"name": "\' + tool_call.name + \'", \' }}\n'
    '            {{- \'"parameters": \' }}\n'
    '            {{- tool_call.arguments | tojson }}\n'
    '            {{- "}" }}\n'
    '        {%- endif %}\n'
    '        {%- if builtin_tools is defined %}\n'
    "            {#- This means we're in ipython mode #}\n"
    '            {{- "<|eom_id|>" }}\n'
    '        {%- else %}\n'
    '            {{- "<|eot_id|>" }}\n'
    '        {%- endif %}\n'
    '    {%- elif message.role == "tool" or message.role == "ipython" %}\n'
    '        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}\n'
    '        {%- if message.content is mapping or message.content is iterable %}\n'
    '            {{- message.content | tojson }}\n'
    '        {%- else %}\n'
    '            {{- message.content }}\n'
    '        {%- endif %}\n'
    '        {{- "<|eot_id|>" }}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- if add_generation_prompt %}\n'
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    '{%- endif %}\n'
)

# library/llama2:7b: Llama 2 chat, <<SYS>>, raise_exception.
# Source: huggingface.js packages/ollama-utils/src/chat-template-automap.ts (GGUF metadata).
LLAMA_2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_messag"
    "e = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = f"
    "alse %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.ind"
    "ex0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistan"
    "t/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>"
    ">\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = mes"
    "sage['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content."
    "strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
    'eos_token }}{% endif %}{% endfor %}'
)

# mistralai/Mixtral-8x7B-Instruct-v0.1: [INST], loop.index0.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
MIXTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 "
    "== 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') "
    "}}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{%"
    " elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_excep"
    "tion('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

# mistralai/Mistral-7B-Instruct-v0.3: [AVAILABLE_TOOLS], tojson.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
MISTRAL_V03_TOOLS = (
    '{{- bos_token }}\n'
    "{%- set user_messages = messages | selectattr('role', 'equalto', 'user') | list %}\n"
    '{%- for message in messages %}\n'
    "    {%- if message['role'] == 'user' %}\n"
    '        {%- if tools and (message == user_messages[-1]) %}\n'
    "            {{- ' [AVAILABLE_TOOLS] [' }}\n"
    '            {%- for tool in tools %}\n'
    '\t\t{%- set tool = tool.function %}\n'
    '\t\t{{- \'{"type": "function", "function": {\' }}\n'
    '\t\t{%- for key, val in tool|items if key != "return" %}\n'
    '\t\t    {%- if val is string %}\n'
    '\t\t\t{{- \'"\' + key + \'": "\' + val + \'"\' }}\n'
    '\t\t    {%- else %}\n'
    '\t\t\t{{- \'"\' + key + \'": \' + val|tojson }}\n'
    '\t\t    {%- endif %}\n'
    '\t\t    {%- if not loop.last %}\n'
    '\t\t\t{{- ", " }}\n'
    '\t\t    {%- endif %}\n'
    '\t\t{%- endfor %}\n'
    '\t\t{{- "}}" }}\n'
    '                {%- if not loop.last %}\n'
    '                    {{- ", " }}\n'
    '                {%- else %}\n'
    '                    {{- "]" }}\n'
    '                {%- endif %}\n'
    '            {%- endfor %}\n'
    "            {{- ' [/AVAILABLE_TOOLS]' }}\n"
    '            {%- endif %}\n'
    "        {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    '        {%- if message.tool_calls is defined and message.tool_calls|length > 0 %}\n'
    "            {{- ' [TOOL_CALLS] [' }}\n"
    '            {%- for tool_call in message.tool_calls %}\n'
    '                {{- {"name": tool_call.function.name, "arguments": tool_call.function.arguments, "'
    'id": tool_call.id}|tojson }}\n'
    '                {%- if not loop.last %}\n'
    '                    {{- ", " }}\n'
    '                {%- endif %}\n'
    '            {%- endfor %}\n'
    "            {{- '] ' }}\n"
    '            {{- eos_token }}\n'
    '    \t{%- elif message.content is defined %}\n'
    "\t    {{- ' ' + message.content + ' ' + eos_token}}\n"
    '        {%- endif %}\n'
    "    {%- elif message['role'] == 'tool' %}\n"
    "        {{- ' [TOOL_RESULTS] ' }}\n"
    '        {{- \'{"call_id": "\' + message.tool_call_id + \'", "content": \' + message.content|string'
    " + '}' }}\n"
    "        {{- ' [/TOOL_RESULTS] ' }}\n"
    '    {%- endif %}\n'
    '{%- endfor %}\n'
)

# Qwen/Qwen2.5-7B-Instruct: ChatML with <tool_call>.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
QWEN_2_5 = (
    '{%- if tools %}\n'
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    '    {%- else %}\n'
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    '    {%- endif %}\n'
    '    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\'
    'nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}\n'
    '    {%- for tool in tools %}\n'
    '        {{- "\\n" }}\n'
    '        {{- tool | tojson }}\n'
    '    {%- endfor %}\n'
    '    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and argu'
    'ments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"ar'
    'guments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}\n'
    '{%- else %}\n'
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    '    {%- else %}\n'
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assist"
    "ant.<|im_end|>\\n' }}\n"
    '    {%- endif %}\n'
    '{%- endif %}\n'
    '{%- for message in messages %}\n'
    '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.r'
    'ole == "assistant" and not message.tool_calls) %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    '    {%- elif message.role == "assistant" %}\n'
    "        {{- '<|im_start|>' + message.role }}\n"
    '        {%- if message.content %}\n'
    "            {{- '\\n' + message.content }}\n"
    '        {%- endif %}\n'
    '        {%- for tool_call in message.tool_calls %}\n'
    '            {%- if tool_call.function is defined %}\n'
    '                {%- set tool_call = tool_call.function %}\n'
    '            {%- endif %}\n'
    '            {{- \'\\n<tool_call>\\n{"name": "\' }}\n'
    '            {{- tool_call.name }}\n'
    '            {{- \'", "arguments": \' }}\n'
    '            {{- tool_call.arguments | tojson }}\n'
    "            {{- '}\\n</tool_call>' }}\n"
    '        {%- endfor %}\n'
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "tool" %}\n'
    '        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}\n'
    "            {{- '<|im_start|>user' }}\n"
    '        {%- endif %}\n'
    "        {{- '\\n<tool_response>\\n' }}\n"
    '        {{- message.content }}\n'
    "        {{- '\\n</tool_response>' }}\n"
    '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\n'
    "            {{- '<|im_end|>\\n' }}\n"
    '        {%- endif %}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- if add_generation_prompt %}\n'
    "    {{- '<|im_start|>assistant\\n' }}\n"
    '{%- endif %}\n'
)

# Qwen/Qwen3-0.6B: namespace(), reversed messages, enable_thinking.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
QWEN_3 = (
    '{%- if tools %}\n'
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- messages[0].content + '\\n\\n' }}\n"
    '    {%- endif %}\n'
    '    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou a'
    're provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}\n'
    '    {%- for tool in tools %}\n'
    '        {{- "\\n" }}\n'
    '        {{- tool | tojson }}\n'
    '    {%- endfor %}\n'
    '    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and argu'
    'ments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"ar'
    'guments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}\n'
    '{%- else %}\n'
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n"
    '    {%- endif %}\n'
    '{%- endif %}\n'
    '{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n'
    '{%- for message in messages[::-1] %}\n'
    '    {%- set index = (messages|length - 1) - loop.index0 %}\n'
    '    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith(\'<too'
    "l_response>') and message.content.endswith('</tool_response>')) %}\n"
    '        {%- set ns.multi_step_tool = false %}\n'
    '        {%- set ns.last_query_index = index %}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- for message in messages %}\n'
    '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    '    {%- elif message.role == "assistant" %}\n'
    '        {%- set content = message.content %}\n'
    "        {%- set reasoning_content = '' %}\n"
    '        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}\n'
    '            {%- set reasoning_content = message.reasoning_content %}\n'
    '        {%- else %}\n'
    "            {%- if '</think>' in message.content %}\n"
    "                {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}\n"
    "                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\\n').spl"
    "it('<think>')[-1].lstrip('\\n') %}\n"
    '            {%- endif %}\n'
    '        {%- endif %}\n'
    '        {%- if loop.index0 > ns.last_query_index %}\n'
    '            {%- if loop.last or (not loop.last and reasoning_content) %}\n'
    "                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n"
    "') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n"
    '            {%- else %}\n'
    "                {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    '            {%- endif %}\n'
    '        {%- else %}\n'
    "            {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    '        {%- endif %}\n'
    '        {%- if message.tool_calls %}\n'
    '            {%- for tool_call in message.tool_calls %}\n'
    '                {%- if (loop.first and content) or (not loop.first) %}\n'
    "                    {{- '\\n' }}\n"
    '                {%- endif %}\n'
    '                {%- if tool_call.function %}\n'
    '                    {%- set tool_call = tool_call.function %}\n'
    '                {%- endif %}\n'
    '                {{- \'<tool_call>\\n{"name": "\' }}\n'
    '                {{- tool_call.name }}\n'
    '                {{- \'", "arguments": \' }}\n'
    '                {%- if tool_call.arguments is string %}\n'
    '                    {{- tool_call.arguments }}\n'
    '                {%- else %}\n'
    '                    {{- tool_call.arguments | tojson }}\n'
    '                {%- endif %}\n'
    "                {{- '}\\n</tool_call>' }}\n"
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "tool" %}\n'
    '        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}\n'
    "            {{- '<|im_start|>user' }}\n"
    '        {%- endif %}\n'
    "        {{- '\\n<tool_response>\\n' }}\n"
    '        {{- message.content }}\n'
    "        {{- '\\n</tool_response>' }}\n"
    '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\n'
    "            {{- '<|im_end|>\\n' }}\n"
    '        {%- endif %}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- if add_generation_prompt %}\n'
    "    {{- '<|im_start|>assistant\\n' }}\n"
    '    {%- if enable_thinking is defined and enable_thinking is false %}\n'
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    '    {%- endif %}\n'
    '{%- endif %}'
)

# library/gemma2:2b: <start_of_turn>, raise_exception.
# Source: huggingface.js packages/ollama-utils/src/chat-template-automap.ts (GGUF metadata).
GEMMA_2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not support"
    "ed') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 %"
    " 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/..."
    "') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set "
    "role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n"
    "' + message['content'] | trim + '<end_of_turn>\n"
    "' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n"
    "'}}{% endif %}"
)

# library/phi3:3.8b: <|user|> / <|end|>.
# Source: huggingface.js packages/ollama-utils/src/chat-template-automap.ts (GGUF metadata).
PHI_3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% elif message['role'] == 'user' %}{{'<|user|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n"
    "' }}{% else %}{{ eos_token }}{% endif %}"
)

# deepseek-ai/DeepSeek-R1: namespace(), tool calls.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
DEEPSEEK_R1 = (
    '{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% '
    "set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first"
    "_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_"
    "sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = fal"
    "se %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{%- e"
    'ndif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %'
    "}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['conten"
    "t']}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is"
    "_tool = false -%}{%- for tool in message['tool_calls'] %}{%- if not ns.is_first %}{%- if message['"
    "content'] is none %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] "
    "+ '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['argu"
    "ments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{%- else %}{{'<｜Assistant｜>' + message['content"
    "'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['funct"
    "ion']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜to"
    "ol▁call▁end｜>'}}{%- endif %}{%- set ns.is_first = true -%}{%- else %}{{'\\n' + '<｜tool▁call▁begi"
    "n｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + t"
    "ool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- endfor %}{{'"
    "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- if message['role'] == 'assistant' and "
    "'tool_calls' not in message %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] "
    "+ '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['cont"
    "ent'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['r"
    "ole'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begi"
    "n｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_"
    "first = false %}{%- else %}{{'<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end"
    "｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endi"
    "f %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
)

# HuggingFaceH4/zephyr-7b-beta: <|user|> with eos_token.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
ZEPHYR = (
    '{% for message in messages %}\n'
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n"
    "' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n"
    "' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n"
    "'  + message['content'] + eos_token }}\n"
    '{% endif %}\n'
    '{% if loop.last and add_generation_prompt %}\n'
    "{{ '<|assistant|>' }}\n"
    '{% endif %}\n'
    '{% endfor %}'
)

# CohereForAI/c4ai-command-r-v01: tool use: macros, namespace.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
COMMAND_R_TOOLS = (
    '\n'
    '{%- macro json_to_python_type(json_spec) %}\n'
    '{%- set basic_type_map = {\n'
    '    "string": "str",\n'
    '    "number": "float",\n'
    '    "integer": "int",\n'
    '    "boolean": "bool"\n'
    '} %}\n'
    '\n'
    '{%- if basic_type_map[json_spec.type] is defined %}\n'
    '    {{- basic_type_map[json_spec.type] }}\n'
    '{%- elif json_spec.type == "array" %}\n'
    '    {{- "List[" +  json_to_python_type(json_spec.items) + "]"}}\n'
    '{%- elif json_spec.type == "object" %}\n'
    '    {{- "Dict[str, " + json_to_python_type(json_spec.additionalProperties) + \']\'}}\n'
    '{%- elif json_spec.type is iterable %}\n'
    '    {{- "Union[" }}\n'
    '    {%- for t in json_spec.type %}\n'
    '      {{- json_to_python_type({"type": t}) }}\n'
    '      {%- if not loop.last %}\n'
    '        {{- "," }} \n'
    '    {%- endif %}\n'
    '    {%- endfor %}\n'
    '    {{- "]" }}\n'
    '{%- else %}\n'
    '    {{- "Any" }}\n'
    '{%- endif %}\n'
    '{%- endmacro %}\n'
    '\n'
    '{%- macro old_tool_parser(tools) %}\n'
    '{%- for tool in tools %}\n'
    '    {%- if loop.index0 != 0 %}\n'
    "        {{- '\\n\\n' }}\n"
    '    {%- endif %}\n'
    "    {{- '```python\\ndef ' + tool.name + '(' }}\n"
    '    {%- for param_name, param_fields in tool.parameter_definitions.items() %}\n'
    '        {%- if loop.index0 != 0 %}\n'
    "            {{- ', '}}\n"
    '        {%- endif %}\n'
    "        {{- param_name + ': ' }}\n"
    '        {%- if not param_fields.required %}\n'
    "            {{- 'Optional[' + param_fields.type + '] = None'}}\n"
    '        {%- else %}\n'
    '            {{- param_fields.type }}\n'
    '        {%- endif %}\n'
    '    {%- endfor %}\n'
    '    {{- \') -> List[Dict]:\\n    """\'}}\n'
    '    {{- tool.description }}\n'
    '    {%- if tool.parameter_definitions|length != 0 %}\n'
    "        {{- '\\n\\n    Args:\\n        '}}\n"
    '        {%- for param_name, param_fields in tool.parameter_definitions.items() %}\n'
    '            {%- if loop.index0 != 0 %}\n'
    "                {{- '\\n        ' }}\n"
    '            {%- endif %}\n'
    "            {{- param_name + ' ('}}\n"
    '            {%- if not param_fields.required %}\n'
    "                {{- 'Optional[' + param_fields.type + ']'}}\n"
    '            {%- else %}\n'
    '                {{- param_fields.type }}\n'
    '            {%- endif %}\n'
    "            {{- '): ' + param_fields.description }}\n"
    '        {%- endfor %}\n'
    '    {%- endif %}\n'
    '    {{- \'\\n    """\\n    pass\\n```\' }}\n'
    '{%- endfor %}\n'
    '{%- endmacro %}\n'
    '\n'
    '{%- macro new_tool_parser(tools) %}\n'
    '{%- for tool in tools %}\n'
    '  {%- if loop.index0 != 0 %}\n'
    "    {{- '\\n\\n'}}\n"
    '  {%- endif %}\n'
    '  {%- if tool.function is defined %}\n'
    '    {%- set tool = tool.function %}\n'
    '  {%- endif %}\n'
    "  {{-'```python\n"
    "def ' + tool.name + '('}}\n"
    '  {%- for param_name, param_fields in tool.parameters.properties.items() %}\n'
    '    {%- if loop.index0 != 0 %}\n'
    "      {{- ', '}}\n"
    '    {%- endif %}\n'
    '    {{-param_name + ": "}} \n'
    '    {%- if not param_name in tool.parameters.required %}\n'
    "      {{-'Optional[' + json_to_python_type(param_fields) + '] = None'}}\n"
    '    {%- else %}\n'
    '      {{- json_to_python_type(param_fields) }}\n'
    '    {%- endif %}\n'
    '  {%- endfor %}\n'
    "  {{- ') -> List[Dict]:\n"
    '    """\'}}\n'
    '  {{- tool.description }}\n'
    '  {%- if tool.parameters.properties|length != 0 %}\n'
    "    {{- '\\n\\n    Args:\\n        '}}\n"
    '    {%- for param_name, param_fields in tool.parameters.properties.items() %}\n'
    '      {%- if loop.index0 != 0 %}\n'
    "        {{- '\\n        ' }}\n"
    '      {%- endif %}\n'
    "      {{- param_name + ' ('}}\n"
    '      {%- if not param_name in tool.parameters.required %}\n'
    "        {{-'Optional[' + json_to_python_type(param_fields) + ']'}}\n"
    '      {%- else %}\n'
    '        {{- json_to_python_type(param_fields) }}\n'
    '      {%- endif %}\n'
    "      {{- '): ' + param_fields.description }}\n"
    '    {%- endfor %}\n'
    '    {%- endif %}\n'
    '    {{- \'\\n    """\\n    pass\\n```\' }}\n'
    '{%- endfor %}\n'
    '{%- endmacro %}\n'
    '\n'
    '{{- bos_token }}\n'
    "{%- if messages[0]['role'] == 'system' %}\n"
    '  {%- set loop_messages = messages[1:] %}\n'
    "  {%- set system_message = messages[0]['content'] %}\n"
    '{%- else %}\n'
    '  {%- set loop_messages = messages %}\n'
    "  {%- set system_message = '## Task and Context\\nYou help people answer their questions and other"
    ' requests interactively. You will be asked a very wide array of requests on all kinds of topics. Y'
    'ou will be equipped with a wide range of search engines or similar tools to help you, which you us'
    "e to research your answer. You should focus on serving the user\\'s needs as best you can, which w"
    'ill be wide-ranging.\\n\\n## Style Guide\\nUnless the user asks for a different style of answer, y'
    "ou should answer in full sentences, using proper grammar and spelling.' %}\n"
    '{%- endif %}\n'
    "{{- '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' }}\n"
    "{{- '# Safety Preamble' }}\n"
    "{{- '\n"
    'The instructions in this section override those in the task description and style guide sections. '
    "Don\\'t answer questions that are harmful or immoral.' }}\n"
    "{{- '\n"
    '\n'
    "# System Preamble' }}\n"
    "{{- '\n"
    "## Basic Rules' }}\n"
    "{{- '\n"
    'You are a powerful conversational AI trained by Cohere to help people. You are augmented by a numb'
    'er of tools, and your job is to use and consume the output of these tools to best help the user. Y'
    'ou will see a conversation history between yourself and a user, ending with an utterance from the '
    'user. You will then see a specific instruction instructing you what kind of response to generate. '
    "When you answer the user\\'s requests, you cite your sources in your answers, according to those i"
    "nstructions.' }}\n"
    "{{- '\n"
    '\n'
    "# User Preamble' }}\n"
    "{{- '\n"
    "' + system_message }}\n"
    "{{-'\n"
    '\n'
    '## Available Tools\n'
    'Here is a list of tools that you have available to you:\n'
    '\n'
    "'}}\n"
    '{%- set ns = namespace(new_tools=true) %}\n'
    '{%- for tool in tools %}\n'
    '    {%- if tool.parameter_definitions is defined %}\n'
    '        {%- set ns.new_tools = false %}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- if ns.new_tools %}\n'
    '    {{- new_tool_parser(tools) }}\n'
    '{%- else %}\n'
    '    {{- old_tool_parser(tools) }}\n'
    '{%- endif %}\n'
    "{{- '<|END_OF_TURN_TOKEN|>'}}\n"
    '{%- for message in loop_messages %}\n'
    "  {%- set content = message['content'] %}\n"
    "  {%- if message.role == 'user' %}\n"
    "    {{- '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}\n"
    "  {%- elif message.role == 'system' %}\n"
    "    {{- '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}\n"
    "  {%- elif message.role == 'assistant' and message.tool_calls is defined %}\n"
    "    {{- '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}\n"
    '    {%- if message.content is defined %}\n'
    '        {{- message.content.strip() }}\n'
    '    {%- endif %}\n'
    "    {{- '\\nAction:\\n```json\\n[\\n' }}\n"
    '    {%- for tool_call in message.tool_calls %}\n'
    '        {%- if tool_call.function is defined %}\n'
    '            {%- set tool_call = tool_call.function %}\n'
    '        {%- endif %}\n'
    "        {{- '{\\n'|indent(4, first=True) }}\n"
    '        {{- \'"tool_name": "\'|indent(8, first=True) + tool_call.name + \'",\\n\' }}\n'
    '        {{- \'"parameters": \'|indent(8, first=True) }}\n'
    '        {%- if tool_call.arguments is defined and tool_call.arguments|length > 0 %}    \n'
    '            {{- tool_call.arguments|tojson(indent=4)|indent(8) }}\n'
    "            {{- '\\n' }}\n"
    '        {%- else %}\n'
    "            {{- '{}\\n' }}\n"
    '        {%- endif %}\n'
    "        {{- '}'|indent(4, first=True) }}\n"
    '        {%- if not loop.last %}\n'
    "            {{- ',\\n' }}\n"
    '        {%- endif %}\n'
    '    {%- endfor %}\n'
    '    {{- "\\n]```\\n" }}\n'
    "  {%- elif message.role == 'assistant' %}\n"
    "    {{- '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}"
    '\n'
    "  {%- elif message.role == 'tool' %}\n"
    "    {{- '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|><results>\\n' }}\n"
    '    {{- message.content.strip() }}\n'
    "    {{- '</results><|END_OF_TURN_TOKEN|>' }}\n"
    '  {%- endif %}\n'
    '{%- endfor %}\n'
    "{{-'<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Write \\'Action:\\' followed by a json-formatted list o"
    "f actions that you want to perform in order to produce a good response to the user\\'s last input."
    ' You can use any of the supplied tools any number of times, but you should aim to execute the mini'
    'mum number of necessary actions for the input. You should use the `directly-answer` tool if callin'
    'g the other tools is unnecessary. The list of actions you want to call should be formatted as a li'
    'st of json objects, for example:\n'
    '```json\n'
    '[\n'
    '    {\n'
    '        "tool_name": title of the tool in the specification,\n'
    '        "parameters": a dict of parameters to input into the tool as they are defined in the specs'
    ', or {} if it takes no parameters\n'
    '    }\n'
    "]```<|END_OF_TURN_TOKEN|>'}}\n"
    '{%- if add_generation_prompt %}\n'
    "  {{- '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}\n"
    '{%- endif %}\n'
)

# library/phi4-reasoning:14b: {% generation %} tag.
# Source: huggingface.js packages/ollama-utils/src/chat-template-automap.ts (GGUF metadata).
PHI_4_REASONING = (
    '<|im_start|>system<|im_sep|>You are Phi, a language model trained by Microsoft to help users. Your'
    ' role as an assistant involves thoroughly exploring questions through a systematic thinking proces'
    's before providing the final precise and accurate solutions. This requires engaging in a comprehen'
    'sive cycle of analysis, summarizing, exploration, reassessment, reflection, backtracing, and itera'
    'tion to develop well-considered thinking process. Please structure your response into two main sec'
    'tions: Thought and Solution using the specified format: <think> {Thought section} </think> {Soluti'
    'on section}. In the Thought section, detail your reasoning process in steps. Each step should incl'
    'ude detailed considerations such as analysing questions, summarizing relevant findings, brainstorm'
    'ing new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting pr'
    'evious steps. In the Solution section, based on various attempts, explorations, and reflections fr'
    'om the Thought section, systematically present the final solution that you deem correct. The Solut'
    'ion section should be logical, accurate, and concise and detail necessary steps needed to reach th'
    'e conclusion. Now, try to solve the following question through the above guidelines:<|im_end|>{% f'
    "or message in messages %}{% if (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + mess"
    "age['content'] + '<|im_end|>'}}{% elif (message['role'] == 'assistant') %}{{'<|im_start|>assistant"
    "<|im_sep|>'}}{% generation %}{{message['content'] + '<|im_end|>'}}{% endgeneration %}{% endif %}{%"
    " endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}"
)

# moonshotai/Kimi-K2-Thinking: {% break %}, macros.
# Source: huggingface.js packages/jinja/test/e2e.test.js (the model's tokenizer_config.json).
KIMI_K2_THINKING = (
    '{%- macro render_content(msg) -%}\n'
    "    {%- set c = msg.get('content') -%}\n"
    '    {%- if c is string -%}\n'
    '      {{ c }}\n'
    '    {%- elif c is not none -%}\n'
    '      {% for content in c -%}\n'
    "        {% if content['type'] == 'image' or 'image' in content or 'image_url' in content -%}\n"
    '          <|media_start|>image<|media_content|><|media_pad|><|media_end|>\n'
    '        {% else -%}\n'
    "          {{ content['text'] }}\n"
    '        {%- endif -%}\n'
    '      {%- endfor -%}\n'
    '    {%- endif -%}\n'
    '{%- endmacro -%}\n'
    '\n'
    '{% macro set_roles(message) -%}\n'
    "  {%- set role_name =  message.get('name') or  message['role'] -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    '    <|im_user|>{{role_name}}<|im_middle|>\n'
    "  {%- elif message['role'] == 'assistant' -%}\n"
    '    <|im_assistant|>{{role_name}}<|im_middle|>\n'
    '  {%- else -%}\n'
    '    <|im_system|>{{role_name}}<|im_middle|>\n'
    '  {%- endif -%}\n'
    '{%- endmacro -%}\n'
    '\n'
    '\n'
    '{%- macro render_toolcalls(message) -%}\n'
    '  <|tool_calls_section_begin|>\n'
    "  {%- for tool_call in message['tool_calls'] -%}\n"
    "    {%- set formatted_id = tool_call['id'] -%}\n"
    "    <|tool_call_begin|>{{ formatted_id }}<|tool_call_argument_begin|>{% if tool_call['function']['"
    "arguments'] is string %}{{ tool_call['function']['arguments'] }}{% else %}{{ tool_call['function']"
    "['arguments'] | tojson }}{% endif %}<|tool_call_end|>\n"
    '  {%- endfor -%}\n'
    '  <|tool_calls_section_end|>\n'
    '{%- endmacro -%}\n'
    '\n'
    '\n'
    '{# Find last non-tool-call assisitant message #}\n'
    '{%- set ns = namespace(last_non_tool_call_assistant_msg=-1) -%}\n'
    '{%- for idx in range(messages|length-1, -1, -1) -%}\n'
    "    {%- if messages[idx]['role'] == 'assistant' and not messages[idx].get('tool_calls') -%}\n"
    '        {%- set ns.last_non_tool_call_assistant_msg = idx -%}\n'
    '        {%- break -%}\n'
    '    {%- endif -%}\n'
    '{%- endfor -%}\n'
    '\n'
    '{# split all messages into history & suffix, reasoning_content in suffix should be reserved.#}\n'
    '{%- set hist_msgs = messages[:ns.last_non_tool_call_assistant_msg+1] -%}\n'
    '{%- set suffix_msgs = messages[ns.last_non_tool_call_assistant_msg+1:] -%}\n'
    '\n'
    '{%- if tools -%}\n'
    "  <|im_system|>tool_declare<|im_middle|>{{ tools | tojson(separators=(',', ':')) }}<|im_end|>\n"
    '{%- endif -%}\n'
    '\n'
    "{%- if messages|length == 0 or messages[0]['role'] != 'system' -%}\n"
    '  <|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>'
    '\n'
    '{%- endif -%}\n'
    '\n'
    '{%- for message in hist_msgs -%}\n'
    '  {{set_roles(message)}}\n'
    "  {%- if message['role'] == 'assistant' -%}\n"
    '    <think></think>{{render_content(message)}}\n'
    "    {%- if message.get('tool_calls') -%}\n"
    '      {{render_toolcalls(message)}}\n'
    '    {%- endif -%}\n'
    "  {%- elif message['role'] == 'tool' -%}\n"
    '    {%- set tool_call_id = message.tool_call_id -%}\n'
    '    ## Return of {{ tool_call_id }}\n'
    '{{render_content(message)}}\n'
    "  {%- elif message['content'] is not none -%}\n"
    '    {{render_content(message)}}\n'
    '  {%- endif -%}\n'
    '  <|im_end|>\n'
    '{%- endfor -%}\n'
    '\n'
    '{%- for message in suffix_msgs -%}\n'
    '  {{set_roles(message)}}\n'
    "  {%- if message['role'] == 'assistant' -%}\n"
    "    {%- set rc = message.get('reasoning_content', '') -%}\n"
    '    <think>{{rc}}</think>{{render_content(message)}}\n'
    "    {%- if message.get('tool_calls') -%}\n"
    '     {{render_toolcalls(message)}}\n'
    '    {%- endif -%}\n'
    "  {%- elif message['role'] == 'tool' -%}\n"
    '    {%- set tool_call_id = message.tool_call_id -%}\n'
    '    ## Return of {{ tool_call_id }}\n'
    '{{render_content(message)}}\n'
    "  {%- elif message['content'] is not none -%}\n"
    '    {{render_content(message)}}\n'
    '  {%- endif -%}\n'
    '  <|im_end|>\n'
    '{%- endfor -%}\n'
    '\n'
    '\n'
    '{%- if add_generation_prompt -%}\n'
    '  <|im_assistant|>assistant<|im_middle|>\n'
    '{%- endif -%}'
)

REAL_TEMPLATES = {
    'meta-llama/Llama-3.1-8B-Instruct': LLAMA_3_1,
    'library/llama2:7b': LLAMA_2,
    'mistralai/Mixtral-8x7B-Instruct-v0.1': MIXTRAL,
    'mistralai/Mistral-7B-Instruct-v0.3': MISTRAL_V03_TOOLS,
    'Qwen/Qwen2.5-7B-Instruct': QWEN_2_5,
    'Qwen/Qwen3-0.6B': QWEN_3,
    'library/gemma2:2b': GEMMA_2,
    'library/phi3:3.8b': PHI_3,
    'deepseek-ai/DeepSeek-R1': DEEPSEEK_R1,
    'HuggingFaceH4/zephyr-7b-beta': ZEPHYR,
    'CohereForAI/c4ai-command-r-v01': COMMAND_R_TOOLS,
    'library/phi4-reasoning:14b': PHI_4_REASONING,
    'moonshotai/Kimi-K2-Thinking': KIMI_K2_THINKING,
}

# Ordinary constructs that chat templates use and that must stay clean.
ORDINARY = [
    "{%- set ns = namespace(found=false, idx=0) %}{%- for m in messages %}{%- if m.role == 'system' %}"
    "{%- set ns.found = true %}{%- set ns.idx = loop.index0 %}{%- endif %}{%- endfor %}{{ ns.found }}",
    "{{ raise_exception('Only user and assistant roles are supported!') }}",
    "{% if strftime_now is defined %}{{ strftime_now('%d %b %Y') }}{% endif %}",
    "{% for m in messages %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
    "{{ loop.revindex }}{{ loop.previtem }}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{{ tools|tojson(indent=4) }}{{ messages[0]['content']|trim }}{{ message.content|tojson }}",
    "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('\\n') }}",
    "{{ tools|map('tojson')|join(', ') }}{{ tools|sort(attribute='name')|first }}{{ items|groupby('kind') }}",
    "{{ '%d'|format(3) }}{{ '%s: %s' % (a, b) }}{{ 'Step %d' % loop.index }}",
    "{% set c = cycler('odd', 'even') %}{{ c.next() }}{% set j = joiner(', ') %}{{ j() }}",
    "{% for i in range(messages|length) %}{{ messages[i]['role'] }}"
    "{{ messages[loop.index0 + 1] if not loop.last }}{% endfor %}",
    "{{ content.split('</think>')[-1].lstrip('\\n') }}{{ content[:10] }}{{ dict(a=1).items()|list }}",
    "{% macro render(p, indent=0) %}{{ ' ' * indent }}{{ p['type'] }}{% for k, v in p.items() %}"
    "{{ k }}={{ v }}{% endfor %}{% endmacro %}{{ render(tool) }}",
    "{% set key = 'tool_calls' %}{{ message[key] }}{{ message['content' if x else 'text'] }}",
    "{{ message.role|upper }}{{ role_map[message.role] }}{{ roles[message['role']|lower] }}",
    "{% for t in tools %}{{ t.function.name }}{{ t.function.parameters.properties|items|list }}{% endfor %}",
    "{{ 'Date: {}'.format(date_string) }}{{ '{\"name\": \"' + name + '\"}' }}",
    "{% for m in messages %}{% if loop.index0 > 3 %}{% break %}{% endif %}{% continue %}{% endfor %}",
    "{% generation %}{{ message.content }}{% endgeneration %}",
    "Respond with {answer: ..., topic: abc} in JSON. {{ '%c' if false }}",
]

# (template, the most severe rule expected); ids name the technique.
HOSTILE = [
    pytest.param("{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == "
                 "'catch_warnings' %}{{ c()._module.__builtins__['__import__']('os').popen('id').read() }}"
                 "{% endif %}{% endfor %}", "TEMPLATE001", id="CVE-2024-34359-subclasses"),
    pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", "TEMPLATE001", id="mro-subclasses"),
    pytest.param("{{ self.__init__.__globals__.__builtins__ }}", "TEMPLATE001", id="self-globals"),
    pytest.param("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "TEMPLATE001", id="cycler-os"),
    pytest.param("{{ lipsum.__globals__['os'] }}", "TEMPLATE001", id="lipsum-globals"),
    pytest.param("{{ joiner.__init__.__globals__ }}", "TEMPLATE001", id="joiner-globals"),
    pytest.param("{{ namespace.__init__.__globals__ }}", "TEMPLATE001", id="namespace-globals"),
    pytest.param("{{ raise_exception.__globals__ }}", "TEMPLATE001", id="runtime-function-globals"),
    pytest.param("{{ request.application.__globals__.__builtins__ }}", "TEMPLATE001", id="flask-request"),
    pytest.param("{{ ()|attr('__cla' ~ 'ss__') }}", "TEMPLATE001", id="attr-concat"),
    pytest.param("{{ ()|attr(['__', 'class', '__']|join) }}", "TEMPLATE001", id="attr-join"),
    pytest.param("{{ ()|attr('__ssalc__'|reverse) }}", "TEMPLATE001", id="attr-reverse"),
    pytest.param("{{ ()|attr('__klass__'|replace('k', 'c')|replace('cl', 'cl')) }}", "TEMPLATE001",
                 id="attr-replace"),
    pytest.param("{{ ()|attr(('%c%c'|format(95, 95)) ~ 'class' ~ ('%c%c'|format(95, 95))) }}",
                 "TEMPLATE001", id="attr-format-%c"),
    pytest.param("{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}", "TEMPLATE001", id="subscript-escaped-underscores"),
    pytest.param("{{ ''['%c%cclass%c%c' % (95, 95, 95, 95)] }}", "TEMPLATE001", id="subscript-percent-%c"),
    pytest.param("{{ ''['{0}{0}class{0}{0}'.format('_')] }}", "TEMPLATE001", id="subscript-str-format"),
    pytest.param("{{ ''['__CLASS__'.lower()] }}", "TEMPLATE001", id="subscript-lower"),
    pytest.param("{{ ''['x__class__x'[1:-1]] }}", "TEMPLATE001", id="subscript-slice"),
    pytest.param("{{ ''['_'.join(['', '', 'class', '', ''])] }}", "TEMPLATE001", id="subscript-str-join"),
    pytest.param("{{ ''['__cla,ss__'.split(',')|join] }}", "TEMPLATE001", id="subscript-split-join"),
    pytest.param("{% set a = '__cla' %}{% set b = 'ss__' %}{{ ''[a ~ b] }}", "TEMPLATE001", id="set-pieces"),
    pytest.param("{% set u = '_' * 2 %}{{ ''[u ~ 'class' ~ u] }}", "TEMPLATE001", id="set-multiplied"),
    pytest.param("{% set a %}__class__{% endset %}{{ ''|attr(a) }}", "TEMPLATE001", id="set-block"),
    pytest.param("{% for u in ['_'] %}{{ ''[u ~ u ~ 'class' ~ u ~ u] }}{% endfor %}", "TEMPLATE001",
                 id="for-target"),
    pytest.param("{% set ns = namespace(a='__cla') %}{{ ''[ns.a ~ 'ss__'] }}", "TEMPLATE001",
                 id="namespace-field"),
    pytest.param("{% set ns = namespace() %}{% set ns.a = '__cla' %}{{ ''[ns.a ~ 'ss__'] }}",
                 "TEMPLATE001", id="namespace-assignment"),
    pytest.param("{{ x[('__cla' if flag else 'zz') ~ 'ss__'] }}", "TEMPLATE001", id="either-branch"),
    pytest.param("{{ messages|map(attribute='__class__')|list }}", "TEMPLATE001", id="map-attribute"),
    pytest.param("{{ messages|map('attr', '__class__')|list }}", "TEMPLATE001", id="map-attr-filter"),
    pytest.param("{{ messages|selectattr('__class__')|list }}", "TEMPLATE001", id="selectattr"),
    pytest.param("{{ messages|groupby('role.__class__') }}", "TEMPLATE001", id="groupby-dotted"),
    pytest.param("{{ messages|sort(attribute='role,__class__') }}", "TEMPLATE001", id="sort-multi"),
    pytest.param("{% filter attr('__class__') %}x{% endfilter %}", "TEMPLATE001", id="filter-block"),
    pytest.param("{{ '{0.__class__.__mro__}'.format(x) }}", "TEMPLATE001", id="format-field"),
    pytest.param("{{ x.mro() }}", "TEMPLATE001", id="mro-method"),
    pytest.param("{{ f.gi_frame.f_globals }}", "TEMPLATE001", id="frame-walk"),
    pytest.param("{{ __builtins__ }}", "TEMPLATE001", id="dunder-name"),
    pytest.param("{% generation %}{{ x.__class__ }}{% endgeneration %}", "TEMPLATE001", id="generation-body"),
    pytest.param("{% do x.__class__ %}", "TEMPLATE001", id="do-statement"),
    pytest.param("{{ x|attr(name) }}", "TEMPLATE002", id="attr-dynamic"),
    pytest.param("{{ x|attr(*args) }}", "TEMPLATE002", id="attr-unpacked"),
    pytest.param("{{ messages|map(attribute=key)|list }}", "TEMPLATE002", id="map-attribute-dynamic"),
    pytest.param("{{ messages|map(filter_name)|list }}", "TEMPLATE002", id="map-filter-dynamic"),
    pytest.param("{% macro m(k) %}{{ ''[k ~ 'ss__'] }}{% endmacro %}{{ m('__cla') }}", "TEMPLATE002",
                 id="subscript-assembled"),
    pytest.param("{{ (prefix ~ '.__class__}').format(x) }}", "TEMPLATE002", id="format-assembled"),
    pytest.param("{{ self._TemplateReference__context }}", "TEMPLATE002", id="self-context"),
    pytest.param("{{ self }}", "TEMPLATE002", id="self"),
    pytest.param("{{ x['_Context__self'] }}", "TEMPLATE002", id="mangled-subscript"),
    pytest.param("{{ cycler.next }}", "TEMPLATE002", id="cycler-attribute"),
    pytest.param("{% set c = lipsum %}{{ c }}", "TEMPLATE002", id="global-as-object"),
    pytest.param("{{ config.items() }}", "TEMPLATE002", id="flask-config"),
    pytest.param("{{ '%c' % 95 }}", "TEMPLATE002", id="percent-%c"),
    pytest.param("{{ '{:c}'.format(95) }}", "TEMPLATE002", id="format-{:c}"),
    pytest.param("{% include 'x' %}", "TEMPLATE002", id="include"),
    pytest.param("{% import 'macros' as m %}", "TEMPLATE002", id="import"),
    pytest.param("{% from 'macros' import f %}", "TEMPLATE002", id="from-import"),
    pytest.param("{% extends 'base' %}", "TEMPLATE002", id="extends"),
]


@pytest.mark.parametrize("name", sorted(REAL_TEMPLATES))
def test_real_chat_templates_are_clean(name: str) -> None:
    assert analyse_template(REAL_TEMPLATES[name]) == []


@pytest.mark.parametrize("template", ORDINARY)
def test_ordinary_constructs_are_clean(template: str) -> None:
    assert analyse_template(template) == []


@pytest.mark.parametrize(("template", "rule"), HOSTILE)
def test_escapes_are_flagged(template: str, rule: str) -> None:
    issues = analyse_template(template)
    rules = {i.rule for i in issues}
    assert rule in rules, issues
    if rule == "TEMPLATE002":
        assert "TEMPLATE001" not in rules, issues
    assert all(i.line == 1 and i.message for i in issues)


def test_fixture_counts() -> None:
    assert len(REAL_TEMPLATES) >= 8 and len(HOSTILE) >= 20


@pytest.mark.parametrize("name", ["Llama-3.1-8B-Instruct", "Qwen3-0.6B", "c4ai-command-r-v01"])
def test_payload_hidden_in_a_real_template_is_found_on_its_line(name: str) -> None:
    text = next(t for k, t in REAL_TEMPLATES.items() if k.endswith(name))
    lines = text.splitlines(keepends=True)
    at = len(lines) // 2
    lines.insert(at, "{%- set x = cycler.__init__.__globals__ %}\n")
    issues = analyse_template("".join(lines))
    assert {i.rule for i in issues} == {"TEMPLATE001", "TEMPLATE002"}
    assert {i.line for i in issues} == {at + 1}
    assert any("'__globals__'" in i.message and "__globals__" in i.snippet for i in issues)


def test_issue_is_a_frozen_value_with_line_and_snippet() -> None:
    (issue,) = analyse_template("{{ a }}\n{{ b }}\n  {{ lipsum.__globals__ }}  \n".replace("lipsum", "x"))
    assert issue == TemplateIssue("TEMPLATE001", "reads the internal attribute '__globals__'", 3,
                                  "{{ x.__globals__ }}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.rule = "TEMPLATE002"      # type: ignore[misc]


def test_identical_issues_are_listed_once() -> None:
    issues = analyse_template("{{ a.__class__ }}{{ b.__class__ }}\n{{ c.__class__ }}")
    assert [(i.rule, i.line) for i in issues] == [("TEMPLATE001", 1), ("TEMPLATE001", 2)]


@pytest.mark.parametrize("template", ["{% for x in %}", "{{ x", "{% if a %}", "{% endfor %}",
                                      "{% debug %}", "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
                                      "{{ " + "9" * 5000 + " }}"])
def test_unparsable_template_raises(template: str) -> None:
    with pytest.raises(UnparsableTemplate) as info:
        analyse_template(template)
    assert "\n" not in str(info.value) and str(info.value)


def test_too_large_template_is_one_issue_without_parsing() -> None:
    (issue,) = analyse_template("{% for x in %}" + "a" * 2000, max_bytes=1000)
    assert issue.rule == "TEMPLATE002" and "too large" in issue.message and issue.line is None
    (issue,) = analyse_template("é" * 600, max_bytes=1000)          # 1200 bytes in UTF-8
    assert "too large" in issue.message
    assert analyse_template("é" * 500, max_bytes=1000) == []


def test_node_budget_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "MAX_NODES", 50)
    issues = analyse_template("{{ x.__class__ }}" + "{{ a }}" * 100)
    assert [i.rule for i in issues] == ["TEMPLATE001", "TEMPLATE002"]
    assert "too complex" in issues[-1].message


def test_issue_list_is_capped() -> None:
    text = "".join(f"{{{{ x{i}.__class__ }}}}\n" for i in range(templates.MAX_ISSUES + 50))
    issues = analyse_template(text)
    assert len(issues) == templates.MAX_ISSUES + 1
    assert "more than" in issues[-1].message


BOUNDED = [
    pytest.param("{{ x[" + " + ".join(["''"] * 3000 + ["'__cla'", "'ss__'"]) + "] }}", "TEMPLATE001",
                 id="deep-add-chain"),
    pytest.param("{{ x[" + " ~ ".join(["'a'"] * 5000) + "] }}", "TEMPLATE002", id="long-concat"),
    pytest.param("{{ x['%0999999999d'|format(1)] }}", "TEMPLATE002", id="huge-format-width"),
    pytest.param("{{ x[('a' * 4000)|replace('a', 'a' * 4000)] }}", "TEMPLATE002", id="replace-blowup"),
    pytest.param("{% set a = '_' * 64 %}{% set b = a * 64 %}{{ x[b * 64] }}", "TEMPLATE002",
                 id="mul-blowup"),
    pytest.param("{{ x[" + " ~ ".join(["('a' if c else 'b')"] * 40) + "] }}", "TEMPLATE002",
                 id="value-explosion"),
    pytest.param("".join(f"{{% set a{i} = a{i - 1} ~ '_' %}}" for i in range(1, 2000))
                 + "{% set a0 = '_' %}{{ y[a1999] }}", "TEMPLATE002", id="long-name-chain"),
    pytest.param("{% set a = 'x' %}" * 2000 + "{% set a = a ~ 'x' %}" + "{{ y[a] }}" * 2000,
                 "TEMPLATE002", id="self-referencing-name"),
    pytest.param("{{ '{" + "__a" * 1300 + "' }}", None, id="regex-stress-format-field"),
    pytest.param("{{ x['%" + "0" * 4000 + "'|format(1)] }}", "TEMPLATE002", id="regex-stress-percent"),
    pytest.param("{{ x." + "_" * 300 + "a" + "_" * 300 + " }}", "TEMPLATE001", id="long-dunder"),
]


@pytest.mark.parametrize(("template", "rule"), BOUNDED)
def test_hostile_shapes_are_bounded(template: str, rule: str | None) -> None:
    start = time.perf_counter()
    issues = analyse_template(template)
    assert time.perf_counter() - start < 5.0
    assert {i.rule for i in issues} == ({rule} if rule else set()), issues
    assert all(len(i.message) < 200 and len(i.snippet) <= 120 for i in issues)


def test_templates_are_parsed_never_compiled_or_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a template was compiled or rendered")

    for name in ("compile", "from_string", "get_template", "_generate"):
        monkeypatch.setattr(jinja2.Environment, name, refuse)
    monkeypatch.setattr(jinja2.Template, "render", refuse)
    busy = "{{ raise_exception('boom') }}{% for i in range(10**9) %}{{ i }}{% endfor %}"
    assert analyse_template(busy) == []
    assert analyse_template(HOSTILE[3].values[0])


def test_a_typical_template_is_fast() -> None:
    text = REAL_TEMPLATES["meta-llama/Llama-3.1-8B-Instruct"]       # 4.6 KB
    analyse_template(text)
    runs = []
    for _ in range(15):
        start = time.perf_counter()
        analyse_template(text)
        runs.append(time.perf_counter() - start)
    assert min(runs) < 0.010, f"{min(runs) * 1000:.1f} ms"

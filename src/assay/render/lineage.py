"""`assay lineage` output for a pair (a `Verdict`) and for a `Forest`.

Text (rich) for people; `assay.lineage/1` JSON for programs (loadable back with `from_json`);
Graphviz DOT; and one self-contained HTML page with an interactive graph (inline CSS and JS, no
network). Pure functions: values in, strings or rich renderables out.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from assay.analyses.lineage.forest import UNDIRECTED, Edge, Forest, Node
from assay.analyses.lineage.types import Evidence, Verdict

SCHEMA = "assay.lineage/1"
TEXT_EVIDENCE_ROWS = 20


# -- JSON --------------------------------------------------------------------------------------
def _plain(x: Any) -> Any:
    """A JSON-safe copy: tuples to lists, bytes to hex, non-finite floats to strings."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
    if isinstance(x, list | tuple | set | frozenset):
        items = [_plain(v) for v in x]
        return sorted(items, key=str) if isinstance(x, set | frozenset) else items
    if isinstance(x, bool) or x is None or isinstance(x, str | int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, bytes):
        return x.hex()
    if hasattr(x, "item"):            # NumPy scalars
        return _plain(x.item())
    return str(x)


def verdict_json(v: Verdict) -> dict[str, Any]:
    return {"relation": v.relation, "parent": v.parent, "child": v.child,
            "confidence": round(float(v.confidence), 6), "summary": v.summary,
            "evidence": [{"tensor": e.tensor, "statistic": e.statistic, "value": _plain(e.value)}
                         for e in v.evidence],
            "details": _plain(v.details), "declared": _plain(v.declared),
            "contradiction": v.contradiction}


def verdict_from_json(d: dict[str, Any]) -> Verdict:
    return Verdict(d["relation"], d["parent"], d["child"], float(d["confidence"]), d["summary"],
                   tuple(Evidence(e["tensor"], e["statistic"], e["value"]) for e in d["evidence"]),
                   dict(d["details"]), dict(d["declared"]), d["contradiction"])


def pair_to_json(a: str, b: str, v: Verdict) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "pair", "a": a, "b": b, **verdict_json(v)}


def _edge_json(e: Edge) -> dict[str, Any]:
    return {"parent": e.parent, "child": e.child, "relation": e.relation,
            "confidence": round(float(e.confidence), 6), "directed": e.directed,
            "verdict": verdict_json(e.verdict)}


def forest_to_json(f: Forest) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": "forest",
            "nodes": [{"label": n.label, "format": n.format, "parameters": n.parameters,
                       "content_id": n.content_id, "declared": _plain(n.declared),
                       "parents": list(f.parents(n.label))} for n in f.nodes],
            "edges": [_edge_json(e) for e in f.edges],
            "roots": list(f.roots), "compared": f.compared, "related": f.related,
            "considered": [_edge_json(e) for e in f.considered],
            "contradictions": dict(sorted(f.contradictions.items()))}


def from_json(doc: dict[str, Any]) -> Verdict | Forest:
    """Load an `assay.lineage/1` document back (a pair gives its Verdict)."""
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"not an {SCHEMA} document")
    if doc.get("kind") == "pair":
        return verdict_from_json(doc)

    def edge(d: dict[str, Any]) -> Edge:
        return Edge(d["parent"], d["child"], d["relation"], float(d["confidence"]), bool(d["directed"]),
                    verdict_from_json(d["verdict"]))
    nodes = tuple(Node(n["label"], n["format"], int(n["parameters"]), n["content_id"], dict(n["declared"]))
                  for n in doc["nodes"])
    return Forest(nodes, tuple(edge(e) for e in doc["edges"]), tuple(doc["roots"]), int(doc["compared"]),
                  int(doc["related"]), tuple(edge(e) for e in doc["considered"]),
                  dict(doc.get("contradictions", {})))


# -- text --------------------------------------------------------------------------------------
def human(n: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _value(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _brief(x: Any, items: int = 6) -> str:
    if isinstance(x, list | tuple) and len(x) > items:
        return "[" + ", ".join(map(_value, x[:items])) + f", ... {len(x) - items} more]"
    if isinstance(x, dict) and len(x) > items:
        keys = sorted(x, key=str)[:items]
        return "{" + ", ".join(f"{k}: {_value(x[k])}" for k in keys) + f", ... {len(x) - items} more}}"
    return _value(x)


def _direction(a: str, b: str, v: Verdict) -> str:
    if v.relation == "unrelated":
        return "no common origin found in the weights"
    if v.relation in ("same", "converted") and not (v.parent and v.child):
        return "none: the same values either way"
    if v.parent and v.child:
        if v.relation in ("same", "converted"):
            return "the same weights either way"
        if v.relation == "merged":
            return f"{v.child} is merged from {v.parent} and others"
        return f"{v.child} derives from {v.parent}"
    return "not in the weights (fine-tuning and adapters change both sides alike)"


def _declared_table(declared: dict[str, Any]) -> Table | None:
    if not declared:
        return None
    sides = {k: v for k, v in declared.items() if isinstance(v, dict)}
    t = Table(title="declared metadata (not trusted; shown beside the weights)", title_justify="left",
              show_edge=False, pad_edge=False)
    if sides and len(sides) == len(declared):
        keys = sorted({k for d in sides.values() for k in d})
        t.add_column("key")
        for side in sides:
            t.add_column(side)
        for k in keys:
            t.add_row(k, *(_value(sides[s].get(k, "")) for s in sides))
    else:
        t.add_column("key")
        t.add_column("value")
        for k in sorted(declared):
            t.add_row(k, _value(declared[k]))
    return t


def _evidence_table(evidence: tuple[Evidence, ...]) -> Table:
    t = Table(title="evidence", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("tensor", "statistic", "value"):
        t.add_column(col)
    for e in evidence[:TEXT_EVIDENCE_ROWS]:
        t.add_row(e.tensor or "(model)", e.statistic, _value(e.value))
    if len(evidence) > TEXT_EVIDENCE_ROWS:
        t.add_row(f"... {len(evidence) - TEXT_EVIDENCE_ROWS} more (see --format json)", "", "")
    return t


def pair_to_text(a: str, b: str, v: Verdict) -> Group:
    head = Text()
    head.append(f"{a} -> {b}: ", style="bold")
    head.append(v.relation, style="bold red" if v.relation == "unrelated" else "bold green")
    head.append(f" (confidence {v.confidence:.2f})\n")
    head.append(f"direction  {_direction(a, b, v)}\n")
    head.append(f"summary    {v.summary}")
    parts: list[Any] = [head]
    if v.details:
        shown = ", ".join(f"{k}={_brief(val)}" for k, val in sorted(v.details.items()))
        parts.append(Text("details    " + shown))
    if v.evidence:
        parts.append(_evidence_table(v.evidence))
    table = _declared_table(v.declared)
    if table is not None:
        parts.append(table)
    if v.contradiction:
        parts.append(Text(f"! declared metadata contradicts the weights: {v.contradiction}",
                          style="bold red"))
    return Group(*parts)


def _node_text(n: Node, contradiction: str | None) -> str:
    base = n.declared.get("base_model") if isinstance(n.declared, dict) else None
    extra = f" [dim](declares base {_esc(str(base))})[/]" if base else ""
    if contradiction:
        extra += " [red]! declared base contradicts the weights[/]"
    return f"[bold]{_esc(n.label)}[/] [dim]{_esc(n.format)}, {human(n.parameters)} parameters[/]{extra}"


def _esc(s: str) -> str:
    from rich.markup import escape
    return escape(str(s))


def forest_to_tree(f: Forest) -> Group:
    nodes = {n.label: n for n in f.nodes}
    shown: dict[str, str] = {}
    root = Tree(f"[bold]lineage[/] of {len(f.nodes)} models: {len(f.edges)} edges, "
                f"{len(f.roots)} roots ({f.compared} pairs compared, {f.related} related)")

    def add(tree: Tree, label: str, via: Edge | None) -> None:
        rel = ""
        if via is not None:
            arrow = "" if via.directed or via.relation in UNDIRECTED else " (direction from the forest)"
            rel = f"[green]{via.relation}[/] {via.confidence:.2f}{arrow}: "
            if via.verdict.contradiction:
                rel += "[red]! declared metadata contradicts the weights[/] "
        if label in shown:
            tree.add(f"{rel}{_esc(label)} [dim](merged; shown under {_esc(shown[label])})[/]")
            return
        ps = f.parents(label)
        shown[label] = via.parent if via is not None else ""
        merged = f" [dim](merge of {', '.join(map(_esc, ps))})[/]" if len(ps) > 1 else ""
        sub = tree.add(rel + _node_text(nodes[label], f.contradictions.get(label)) + merged)
        for c in f.children(label):
            e = f.edge(label, c)
            assert e is not None
            add(sub, c, e)

    for r in f.roots:
        add(root, r, None)
    parts: list[Any] = [root]
    for e in f.edges:
        if e.verdict.contradiction:
            parts.append(Text(f"! {e.parent} -> {e.child}: declared metadata contradicts the weights: "
                              f"{e.verdict.contradiction}", style="bold red"))
    for label, note in sorted(f.contradictions.items()):
        parts.append(Text(f"! {label} {note}", style="bold red"))
    return Group(*parts)


# -- Graphviz DOT ------------------------------------------------------------------------------
def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def forest_to_dot(f: Forest) -> str:
    lines = ["digraph lineage {", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for n in f.nodes:
        text = n.label + "\n" + f"{n.format}, {human(n.parameters)}"
        red = ", color=red" if n.label in f.contradictions else ""
        lines.append(f"  {_dot_str(n.label)} [label={_dot_str(text)}{red}];")
    for e in f.edges:
        attrs = [f"label={_dot_str(f'{e.relation} {e.confidence:.2f}')}"]
        if not e.directed:
            attrs.append("style=dashed")
        if e.relation in UNDIRECTED:
            attrs.append("dir=none")
        if e.verdict.contradiction:
            attrs.append("color=red")
        lines.append(f"  {_dot_str(e.parent)} -> {_dot_str(e.child)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- HTML --------------------------------------------------------------------------------------
def _script_json(doc: dict[str, Any]) -> str:
    """JSON safe to place inside a <script> element (no `</script>` or `<!--` can appear)."""
    text = json.dumps(doc, ensure_ascii=True, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def forest_to_html(f: Forest, title: str = "assay lineage") -> str:
    """One self-contained page: the forest as an SVG graph drawn by inline JS (no network)."""
    return (_HTML.replace("@@TITLE@@", html.escape(title))
            .replace("@@DATA@@", _script_json(forest_to_json(f))))


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>@@TITLE@@</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#graph{flex:1;overflow:auto;background:#fafafa}
#side{width:360px;overflow:auto;border-left:1px solid #ddd;padding:12px;box-sizing:border-box}
h1{font-size:16px;margin:0 0 8px}
.node rect{fill:#fff;stroke:#456;stroke-width:1.2;rx:6}
.node.root rect{stroke:#0a6;stroke-width:2}
.node.contra rect{stroke:#c22;stroke-dasharray:4 2}
.node:hover rect,.node.sel rect{fill:#eef6ff}
.node text{font-size:12px;pointer-events:none}
.node .sub{fill:#666;font-size:11px}
.edge path{fill:none;stroke:#789;stroke-width:1.5}
.edge.undirected path{stroke-dasharray:5 4}
.edge.contra path{stroke:#c22}
.edge:hover path,.edge.sel path{stroke:#06c;stroke-width:3}
.edge-label{font-size:11px;fill:#345;paint-order:stroke;stroke:#fafafa;stroke-width:3px;cursor:pointer}
.edge .hit{stroke:transparent;stroke-width:10;fill:none;pointer-events:stroke}
table{border-collapse:collapse;font-size:12px;width:100%}
td,th{border-bottom:1px solid #eee;padding:2px 4px;text-align:left;vertical-align:top}
th{white-space:nowrap} td{word-break:break-all}
.contra{color:#c22;font-weight:bold}
.muted{color:#777}
</style></head>
<body>
<div id="graph"><svg id="svg" xmlns="http://www.w3.org/2000/svg"></svg></div>
<div id="side"><h1>@@TITLE@@</h1><div id="summary" class="muted"></div><div id="info">
<p class="muted">Hover or click a model or an edge to see its evidence.</p></div></div>
<script type="application/json" id="lineage-data">@@DATA@@</script>
<script>
(function(){
"use strict";
var data=JSON.parse(document.getElementById("lineage-data").textContent);
var NS="http://www.w3.org/2000/svg", W=190, H=54, GX=40, GY=90, PAD=30;
function el(tag,attrs,parent){var e=document.createElementNS(NS,tag);
  for(var k in attrs){e.setAttribute(k,attrs[k]);} if(parent){parent.appendChild(e);} return e;}
function h(tag,text,parent,cls){var e=document.createElement(tag); if(text!==undefined){e.textContent=text;}
  if(cls){e.className=cls;} if(parent){parent.appendChild(e);} return e;}
function human(n){var u=[["B",1e9],["M",1e6],["K",1e3]];
  for(var i=0;i<u.length;i++){if(n>=u[i][1]){return (n/u[i][1]).toPrecision(3).replace(/\\.?0+$/,"")+u[i][0];}}
  return String(n);}
function short(s,n){s=String(s); var p=s.replace(/\\/+$/,"").split("/"); var b=p[p.length-1]||s;
  return b.length>n?b.slice(0,n-1)+"\\u2026":b;}
var nodes=data.nodes, edges=data.edges, contra=data.contradictions||{}, byLabel={};
nodes.forEach(function(n,i){byLabel[n.label]=n; n.index=i; n.parentsE=[]; n.childrenE=[];});
edges.forEach(function(e){byLabel[e.child].parentsE.push(e); byLabel[e.parent].childrenE.push(e);});
// layered layout: depth = longest path from a root; order within a layer by the parents' mean x
var depth={}, changed=true, guard=0;
nodes.forEach(function(n){depth[n.label]=0;});
while(changed&&guard++<nodes.length+2){changed=false;
  edges.forEach(function(e){if(depth[e.child]<depth[e.parent]+1){depth[e.child]=depth[e.parent]+1; changed=true;}});}
var layers=[];
nodes.forEach(function(n){var d=depth[n.label]; (layers[d]=layers[d]||[]).push(n);});
var pos={};
for(var pass=0;pass<3;pass++){
  layers.forEach(function(layer,d){
    if(d>0||pass>0){layer.forEach(function(n){
      var ref=(d>0?n.parentsE.map(function(e){return pos[e.parent];}):n.childrenE.map(function(e){return pos[e.child];}))
        .filter(function(x){return x!==undefined;});
      n.key=ref.length?ref.reduce(function(a,b){return a+b;},0)/ref.length:(pos[n.label]!==undefined?pos[n.label]:n.index);});
      layer.sort(function(a,b){return a.key-b.key||a.index-b.index;});}
    layer.forEach(function(n,i){pos[n.label]=i;});});}
var widest=Math.max.apply(null,layers.map(function(l){return l.length;}));
var svg=document.getElementById("svg"), totalW=PAD*2+widest*(W+GX), totalH=PAD*2+layers.length*(H+GY);
svg.setAttribute("width",totalW); svg.setAttribute("height",totalH);
svg.setAttribute("viewBox","0 0 "+totalW+" "+totalH);
var defs=el("defs",{},svg), mk=el("marker",{id:"arrow",viewBox:"0 0 10 10",refX:"10",refY:"5",
  markerWidth:"9",markerHeight:"9",markerUnits:"userSpaceOnUse",orient:"auto-start-reverse"},defs);
el("path",{d:"M0,0 L10,5 L0,10 z",fill:"#789"},mk);
var xy={};
layers.forEach(function(layer,d){var off=(widest-layer.length)*(W+GX)/2;
  layer.forEach(function(n,i){xy[n.label]={x:PAD+off+i*(W+GX),y:PAD+d*(H+GY)};});});
var gEdges=el("g",{id:"edges"},svg), gLabels=el("g",{id:"edge-labels"},svg), gNodes=el("g",{id:"nodes"},svg);
var selected=null;
function select(elem,show){if(selected){selected.classList.remove("sel");} selected=elem; elem.classList.add("sel"); show();}
function kv(table,k,v){var tr=h("tr","",table); h("th",k,tr); h("td",typeof v==="object"?JSON.stringify(v):String(v),tr);}
function showNode(n){var info=document.getElementById("info"); info.textContent="";
  h("h2",n.label,info); var t=h("table","",info);
  kv(t,"format",n.format); kv(t,"parameters",n.parameters.toLocaleString("en")); kv(t,"content id",n.content_id);
  kv(t,"parents",n.parentsE.length?n.parentsE.map(function(e){return e.parent;}).join(", "):"(root)");
  if(contra[n.label]){h("p",n.label+" "+contra[n.label],info,"contra");}
  var keys=Object.keys(n.declared||{});
  if(keys.length){h("h3","declared metadata (not trusted)",info); var d=h("table","",info);
    keys.forEach(function(k){kv(d,k,n.declared[k]);});}}
function showEdge(e){var info=document.getElementById("info"), v=e.verdict; info.textContent="";
  h("h2",e.relation+" ("+e.confidence.toFixed(2)+")",info);
  h("p",e.parent+" \\u2192 "+e.child+(e.directed?"":" (direction from the forest: not in the weights of the pair)"),info);
  h("p",v.summary,info,"muted");
  if(v.contradiction){h("p","declared metadata contradicts the weights: "+v.contradiction,info,"contra");}
  var dk=Object.keys(v.details||{}); if(dk.length){var dt=h("table","",info); dk.forEach(function(k){kv(dt,k,v.details[k]);});}
  if(v.evidence.length){h("h3","evidence",info); var t=h("table","",info), tr=h("tr","",t);
    ["tensor","statistic","value"].forEach(function(c){h("th",c,tr);});
    v.evidence.forEach(function(ev){var r=h("tr","",t); h("td",ev.tensor===null?"(model)":ev.tensor,r);
      h("td",ev.statistic,r); h("td",typeof ev.value==="number"?ev.value.toPrecision(6):String(ev.value),r);});}
  var decl=Object.keys(v.declared||{}); if(decl.length){h("h3","declared metadata (not trusted)",info);
    var d=h("table","",info); decl.forEach(function(k){kv(d,k,v.declared[k]);});}}
// several edges at one model leave or arrive spread along its side, ordered by the other end
function slot(list,e,key){var l=list.slice().sort(function(p,q){return xy[p[key]].x-xy[q[key]].x;});
  return W*(l.indexOf(e)+1)/(l.length+1);}
edges.forEach(function(e){var a=xy[e.parent], b=xy[e.child];
  var x1=a.x+slot(byLabel[e.parent].childrenE,e,"child"), y1=a.y+H;
  var x2=b.x+slot(byLabel[e.child].parentsE,e,"parent"), y2=b.y, my=(y1+y2)/2;
  if(b.y<=a.y){y1=a.y+H/2; y2=b.y+H/2; x1=a.x+(b.x>a.x?W:0); x2=b.x+(b.x>a.x?0:W); my=y1-GY/2;}
  var cls="edge"+(e.directed?"":" undirected")+(e.verdict.contradiction?" contra":"");
  var g=el("g",{"class":cls,"data-parent":e.parent,"data-child":e.child,"data-relation":e.relation},gEdges);
  var d="M"+x1+","+y1+" C"+x1+","+my+" "+x2+","+my+" "+x2+","+y2;
  el("path",{d:d,"class":"hit"},g);
  var p=el("path",{d:d},g); if(e.relation!=="same"&&e.relation!=="converted"){p.setAttribute("marker-end","url(#arrow)");}
  // the label sits on the curve just above its child, on a layer above every edge
  var k=byLabel[e.child].parentsE.indexOf(e), above=20+14*(k%3);   // stagger labels of one child
  var t=Math.min(0.92,Math.max(0.35,1-above/Math.max(1,Math.abs(y2-y1)))), u=1-t;
  var lx=u*u*u*x1+3*u*u*t*x1+3*u*t*t*x2+t*t*t*x2, ly=u*u*u*y1+3*u*u*t*my+3*u*t*t*my+t*t*t*y2;
  var lab=el("text",{x:lx+4,y:ly,"class":"edge-label","data-parent":e.parent,"data-child":e.child},gLabels);
  lab.textContent=e.relation+" "+e.confidence.toFixed(2);
  var tip=el("title",{},g); tip.textContent=e.parent+" -> "+e.child+": "+e.verdict.summary;
  [g,lab].forEach(function(x){x.addEventListener("mouseenter",function(){showEdge(e);});
    x.addEventListener("click",function(){select(g,function(){showEdge(e);});});});});
nodes.forEach(function(n){var p=xy[n.label], root=n.parentsE.length===0;
  var g=el("g",{"class":"node"+(root?" root":"")+(contra[n.label]?" contra":""),"data-label":n.label,transform:"translate("+p.x+","+p.y+")"},gNodes);
  el("rect",{width:W,height:H,rx:6},g);
  var t1=el("text",{x:8,y:18,"class":"node-label"},g); t1.textContent=short(n.label,26);
  var t2=el("text",{x:8,y:34,"class":"sub node-format"},g); t2.textContent=n.format;
  var t3=el("text",{x:8,y:48,"class":"sub node-params"},g); t3.textContent=human(n.parameters)+" parameters";
  var tip=el("title",{},g); tip.textContent=n.label;
  g.addEventListener("mouseenter",function(){showNode(n);});
  g.addEventListener("click",function(){select(g,function(){showNode(n);});});});
document.getElementById("summary").textContent=nodes.length+" models, "+edges.length+" edges, "+
  data.roots.length+" roots; "+data.compared+" pairs compared, "+data.related+" related.";
document.body.setAttribute("data-ready","1");
})();
</script>
</body></html>
"""  # noqa: E501  (the embedded page keeps its script compact)

# Generates en.html and zh.html, the course slide decks, from one structure
# (the same slides, diagrams and order in both languages): edit the texts
# below, then run `python3 docs/course/slides/make_slides.py` from the repository.
# The lab serves the decks at /slides/; TestCourseSlides renders every slide.
import html
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CSS = """
*{box-sizing:border-box}html,body{margin:0;height:100%;background:#111;font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif}
.slide{display:none;position:absolute;inset:0;margin:auto;width:1280px;height:720px;background:#fff;color:#1a1a1a;padding:48px 64px;overflow:hidden}
.slide.on{display:block}
h1{font-size:54px;margin:0 0 24px}h2{font-size:40px;margin:0 0 20px;color:#0d47a1}
p,li{font-size:26px;line-height:1.4}li{margin:6px 0}.small{font-size:18px;color:#555}
table{border-collapse:collapse;font-size:20px}td,th{border:1px solid #bbb;padding:5px 10px;text-align:left}th{background:#e3f2fd}
code{font-family:ui-monospace,monospace;background:#f3f3f3;padding:1px 5px;border-radius:3px}
pre{font-size:21px;background:#f6f8fa;padding:14px;border-radius:6px}
.num{position:absolute;right:24px;bottom:16px;font-size:16px;color:#888}
.two{display:flex;gap:40px;align-items:flex-start}.two>*{flex:1}
svg text{font-family:system-ui,"Noto Sans CJK SC",sans-serif}
"""
JS = """
const slides=[...document.querySelectorAll('.slide')];let i=0;
function show(n){i=Math.max(0,Math.min(slides.length-1,n));slides.forEach((s,k)=>s.classList.toggle('on',k===i));location.hash='#'+(i+1);document.title=slides[i].dataset.title+' ('+(i+1)+'/'+slides.length+')'}
document.addEventListener('keydown',e=>{if(['ArrowRight','PageDown',' ','Enter'].includes(e.key)){show(i+1);e.preventDefault()}else if(['ArrowLeft','PageUp','Backspace'].includes(e.key)){show(i-1);e.preventDefault()}else if(e.key==='Home')show(0);else if(e.key==='End')show(slides.length-1)});
document.addEventListener('click',e=>{if(e.target.closest('a'))return;show(e.clientX>innerWidth/2?i+1:i-1)});
function fit(){const s=Math.min(innerWidth/1280,innerHeight/720);slides.forEach(x=>x.style.transform='scale('+s+')')}
addEventListener('resize',fit);fit();show((parseInt(location.hash.slice(1))||1)-1);
window.deck={count:slides.length,show:show,current:()=>i};
"""

def svg_proof(t):
    # Gilbert & Lynch: a timeline with two nodes, the cut, write ok on G1, then read on G2 returning old.
    return f"""<svg viewBox="0 0 1100 360" width="1100" height="360" role="img" aria-label="{html.escape(t['proof_aria'])}">
<line x1="120" y1="90" x2="1060" y2="90" stroke="#333" stroke-width="3"/><text x="20" y="98" font-size="26">G1</text>
<line x1="120" y1="260" x2="1060" y2="260" stroke="#333" stroke-width="3"/><text x="20" y="268" font-size="26">G2</text>
<rect x="260" y="120" width="800" height="110" fill="#ffebee"/><text x="760" y="215" font-size="22" fill="#c62828">{t['proof_cut']}</text>
<line x1="300" y1="40" x2="300" y2="90" stroke="#1565c0" stroke-width="3" marker-end="url(#a)"/><text x="230" y="34" font-size="20" fill="#1565c0">write(v1)</text>
<rect x="300" y="78" width="230" height="24" fill="#bbdefb"/><text x="540" y="72" font-size="20" fill="#1565c0">ok</text>
<line x1="650" y1="310" x2="650" y2="260" stroke="#2e7d32" stroke-width="3"/><text x="600" y="340" font-size="20" fill="#2e7d32">read()</text>
<rect x="650" y="248" width="200" height="24" fill="#c8e6c9"/><text x="860" y="300" font-size="20" fill="#2e7d32">→ v0</text>
<line x1="530" y1="90" x2="650" y2="260" stroke="#999" stroke-dasharray="6 6"/><text x="600" y="150" font-size="18" fill="#555">{t['proof_after']}</text>
<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#1565c0"/></marker></defs>
</svg>"""

def node(x,y,label,color="#1565c0"):
    return f'<circle cx="{x}" cy="{y}" r="26" fill="{color}"/><text x="{x}" y="{y+8}" font-size="22" fill="#fff" text-anchor="middle">{label}</text>'

def svg_shapes(t):
    parts=[]
    def box(x, title):
        parts.append(f'<text x="{x+110}" y="30" font-size="22" text-anchor="middle">{title}</text>')
    # halves
    box(0,"halves")
    parts.append(node(60,110,"n1")+node(60,220,"n2")+'<line x1="110" y1="60" x2="110" y2="280" stroke="#c62828" stroke-width="4" stroke-dasharray="8 6"/>'+node(160,110,"n3")+node(160,220,"n4")+node(210,165,"n5"))
    box(260,"isolate:leader")
    parts.append(node(320,165,"L","#c62828")+'<circle cx="320" cy="165" r="46" fill="none" stroke="#c62828" stroke-width="4" stroke-dasharray="8 6"/>'+node(430,110,"n2")+node(430,220,"n3"))
    box(520,"majorities-ring")
    import math
    pts=[(630+90*math.cos(2*math.pi*k/5-math.pi/2),165+90*math.sin(2*math.pi*k/5-math.pi/2)) for k in range(5)]
    for k in range(5):
        for d in (1,):
            a,b=pts[k],pts[(k+d)%5]
            parts.append(f'<line x1="{a[0]:.0f}" y1="{a[1]:.0f}" x2="{b[0]:.0f}" y2="{b[1]:.0f}" stroke="#2e7d32" stroke-width="3"/>')
    for k,(x,y) in enumerate(pts):
        parts.append(node(x,y,f"n{k+1}"))
    box(800,"bridge")
    parts.append('<line x1="860" y1="110" x2="920" y2="165" stroke="#2e7d32" stroke-width="3"/><line x1="860" y1="220" x2="920" y2="165" stroke="#2e7d32" stroke-width="3"/><line x1="980" y1="110" x2="920" y2="165" stroke="#2e7d32" stroke-width="3"/><line x1="980" y1="220" x2="920" y2="165" stroke="#2e7d32" stroke-width="3"/>')
    parts.append(node(860,110,"n1")+node(860,220,"n2")+node(920,165,"n3","#6a1b9a")+node(980,110,"n4")+node(980,220,"n5"))
    parts.append(f'<text x="550" y="320" font-size="18" fill="#555" text-anchor="middle">{t["shapes_note"]}</text>')
    return '<svg viewBox="0 0 1100 340" width="1100" height="340" role="img" aria-label="'+html.escape(t['shapes_aria'])+'">'+"".join(parts)+'</svg>'

def svg_raft(t):
    p=[]
    p.append(node(120,90,"L","#c62828")+f'<text x="120" y="150" font-size="20" text-anchor="middle">{t["raft_leader"]}</text>')
    p.append(node(120,240,"F")+node(260,240,"F"))
    p.append('<line x1="140" y1="110" x2="120" y2="214" stroke="#999" stroke-width="2"/><line x1="140" y1="110" x2="250" y2="214" stroke="#999" stroke-width="2"/>')
    # logs
    def log(y,n,committed,label):
        s=f'<text x="360" y="{y+26}" font-size="20">{label}</text>'
        for k in range(n):
            fill="#c8e6c9" if k<committed else "#fff3e0"
            s+=f'<rect x="{440+k*70}" y="{y}" width="62" height="40" fill="{fill}" stroke="#555"/><text x="{471+k*70}" y="{y+27}" font-size="18" text-anchor="middle">t2</text>'
        return s
    p.append(log(70,6,4,"L"))
    p.append(log(150,5,4,"F1"))
    p.append(log(230,4,4,"F2"))
    p.append(f'<line x1="720" y1="50" x2="720" y2="290" stroke="#2e7d32" stroke-width="3" stroke-dasharray="6 5"/><text x="730" y="48" font-size="18" fill="#2e7d32">{t["raft_commit"]}</text>')
    p.append(f'<text x="360" y="320" font-size="18" fill="#555">{t["raft_note"]}</text>')
    return '<svg viewBox="0 0 1100 340" width="1100" height="340" role="img" aria-label="'+html.escape(t['raft_aria'])+'">'+"".join(p)+'</svg>'

def svg_ladder(t):
    rungs=t['ladder']
    p=[]
    for k,(name,lab) in enumerate(rungs):
        y=30+k*62
        w=1060-k*60
        p.append(f'<rect x="{20+k*30}" y="{y}" width="{w}" height="50" rx="8" fill="{["#0d47a1","#1565c0","#1e88e5","#42a5f5","#90caf9"][k]}"/>')
        p.append(f'<text x="{40+k*30}" y="{y+33}" font-size="21" fill="{"#fff" if k<4 else "#0d2b4d"}"><tspan font-weight="bold">{html.escape(name)}</tspan>  —  {html.escape(lab)}</text>')
    return '<svg viewBox="0 0 1100 350" width="1100" height="350" role="img" aria-label="'+html.escape(t['ladder_aria'])+'">'+"".join(p)+'</svg>'

def deck(t, lang):
    S=[]
    def slide(title, body):
        S.append((title, body))
    slide(t['s1_t'], f"<h1>{t['s1_t']}</h1><p>{t['s1_sub']}</p><p class=small>{t['s1_nav']}</p>")
    slide(t['s2_t'], f"<h2>{t['s2_t']}</h2><ul>"+"".join(f"<li>{x}</li>" for x in t['s2_li'])+f"</ul><p class=small>{t['s2_src']}</p>")
    slide(t['s3_t'], f"<h2>{t['s3_t']}</h2>{svg_proof(t)}<p>{t['s3_p']}</p>")
    slide(t['s4_t'], f"<h2>{t['s4_t']}</h2><ul>"+"".join(f"<li>{x}</li>" for x in t['s4_li'])+f"</ul><p class=small>{t['s4_src']}</p>")
    slide(t['s5_t'], f"<h2>{t['s5_t']}</h2>{svg_shapes(t)}<pre>mpim fault partition isolate:leader\nmpim fault partition halves</pre>")
    slide(t['s6_t'], f"<h2>{t['s6_t']}</h2>{svg_raft(t)}<p>{t['s6_p']}</p>")
    slide(t['s7_t'], f"<h2>{t['s7_t']}</h2><div class=two><ul>"+"".join(f"<li>{x}</li>" for x in t['s7_li'])+f"</ul><pre>mpim chaos run isolate-leader \\\n  --mode both --quick</pre></div><p class=small>{t['s7_src']}</p>")
    slide(t['s8_t'], f"<h2>{t['s8_t']}</h2><ul>"+"".join(f"<li>{x}</li>" for x in t['s8_li'])+"</ul>")
    slide(t['s9_t'], f"<h2>{t['s9_t']}</h2>{svg_ladder(t)}<p class=small>{t['s9_src']}</p>")
    rows="".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td><td class=small>{d}</td></tr>" for a,b,c,d in t['pacelc'])
    slide(t['s10_t'], f"<h2>{t['s10_t']}</h2><table><tr>{''.join(f'<th>{h}</th>' for h in t['pacelc_h'])}</tr>{rows}</table><p class=small>{t['s10_src']}</p>")
    slide(t['s11_t'], f"<h2>{t['s11_t']}</h2><table><tr>{''.join(f'<th>{h}</th>' for h in t['bench_h'])}</tr>"+"".join(f"<tr>{''.join(f'<td>{c}</td>' for c in r)}</tr>" for r in t['bench_rows'])+f"</table><p>{t['s11_p']}</p><p class=small>{t['s11_src']}</p>")
    slide(t['s12_t'], f"<h2>{t['s12_t']}</h2><ul>"+"".join(f"<li>{x}</li>" for x in t['s12_li'])+"</ul>")
    slide(t['s13_t'], f"<h2>{t['s13_t']}</h2><pre>make lab\nmpim client --gateway ws://127.0.0.1:PORT/ws --user alice --register\nmpim fault partition n1 g1 / n2 n3 g2 g3 redis\nmpim lab top\nmpim chaos sweep isolate-leader --seeds 5 --mode both --quick</pre><p>{t['s13_p']}</p>")
    n=len(S)
    secs="\n".join(f'<section class="slide" data-title="{html.escape(title)}">{body}<div class=num>{k+1} / {n}</div></section>' for k,(title,body) in enumerate(S))
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{html.escape(t['s1_t'])}</title>
<!-- The mpim course's slides ({lang}). Self-contained: no network, works offline. Keys: → / space next, ← back, Home, End; click right or left half. Served by the lab at /slides/. The other language: {t['other']}. -->
<style>{CSS}</style></head><body>
{secs}
<script>{JS}</script>
</body></html>
"""

common_pacelc_src_en="Sources: Abadi 2012 (PA/EL: Dynamo, Cassandra; PC/EC: VoltDB); etcd docs, \"API guarantees\"; ZooKeeper Programmer's Guide, \"Consistency guarantees\"; Brewer 2017, \"Spanner, TrueTime and the CAP Theorem\"; AWS DynamoDB docs, \"Read consistency\"; Kafka docs, acks / min.insync.replicas; Redis docs, \"Replication\" and Jepsen 2013 on Sentinel."
EN={
 'other':'zh.html',
 's1_t':'CAP you can run','s1_sub':'A real IM system whose consistency is a switch: AP or CP, real processes, real Raft, real faults, measured.','s1_nav':'→ or space: next · ←: back · Home / End',
 's2_t':'What the theorem says (Gilbert & Lynch 2002)',
 's2_li':['<b>C</b>: linearizability — every operation appears to take effect at one instant between its call and its answer.','<b>A</b>: every request received by a node that has not failed gets an answer.','<b>P</b>: an assumption about the network — messages between nodes may be lost, arbitrarily many.','Theorem: when messages can be lost, no system gives both C and A in every run. Tolerating P means keeping C <i>or</i> A during the cut.'],
 's2_src':'Gilbert & Lynch, SIGACT News 33(2), 2002. Converging after the cut is eventual consistency — another property.',
 's3_t':'The proof, as a timeline','proof_cut':'the cut: G1 and G2 cannot talk','proof_after':'the read starts after the write\u2019s ok','proof_aria':'Two nodes; during a cut G1 acknowledges a write, then a read at G2 returns the old value.',
 's3_p':'If G2 answers (A), it answers v0 — but the read began after v1 was acknowledged: not linearizable (C). A read that overlaps the write may legally miss it; the proof needs one that starts after the <code>ok</code>.',
 's4_t':'Brewer, twelve years later (2012)',
 's4_li':['"Choose two of three" misleads: partitions are rare, and when there is none you can have C and A.','The choice is made per operation and per partition, not once for a system.','What matters is detecting a partition, a mode during it, and recovery after it.','A crash is not a partition: a failed node is unavailable and still consistent.'],
 's4_src':'Brewer, "CAP Twelve Years Later: How the Rules Have Changed", IEEE Computer 45(2), 2012.',
 's5_t':'Partitions the lab makes','shapes_note':'The fault layer holds traffic across the cut: connections stall, never reset — like a real network.','shapes_aria':'Four partition shapes: halves, isolate the leader, majorities ring, bridge.',
 's6_t':'Raft: why a minority cannot write','raft_leader':'leader, term 2','raft_commit':'committed: on a majority','raft_note':'An entry commits once a majority holds it; a cut-off minority never reaches one.','raft_aria':'A leader and two followers with their logs; entries committed once on a majority.',
 's6_p':'hashicorp/raft 1.7 has pre-vote on: an isolated node does not raise its term, so the cluster is not disrupted when it returns.',
 's7_t':'CP in mpim: the leader cut off',
 's7_li':['Writes are acknowledged after a quorum commits them.','The cut-off side refuses: <code>unavailable</code> (not applied) or <code>timeout</code> (unknown) — never a false <code>ok</code>.','Five seeds (<code>--quick</code>, medians; the table is in chapter 1): the cut side acknowledged <b><!-- n:isolate-leader/cp/cut.acked_while_cut -->0<!-- /n --> of <!-- n:isolate-leader/cp/cut.sends -->13<!-- /n --></b> writes; the majority <!-- n:isolate-leader/cp/rest.share -->99.6%<!-- /n -->; lost <!-- n:isolate-leader/cp/lost -->0<!-- /n -->; linearizable.'],
 's7_src':'docs/course/01-cap.md, "Experiment: one partition, three systems".',
 's8_t':'AP in mpim: every side writes',
 's8_li':['Every node accepts at once, stamps a hybrid logical clock, publishes on Redis.','Order is deterministic (clock, origin, id); messages stay <i>tentative</i> until every node is heard; a late message sorting in sends <code>resync</code>.','Repair (outbox, anti-entropy) makes replicas converge — <!-- n:isolate-leader/ap/convergence_ms -->142 ms<!-- /n --> after heal (the median of chapter 1).','Repair off (the naive design): Redis pub/sub is at-most-once — a median of <!-- n:isolate-leader/ap-norepair/lost -->453<!-- /n --> acknowledged messages lost.'],
 's9_t':'The consistency ladder, in the lab','ladder_aria':'Five consistency models from strongest to weakest, each with what the lab shows.',
 'ladder':[('linearizable','CP reads through ReadIndex'),('sequential','CP local reads: a prefix of the one log order, maybe behind'),('causal','AP delivers a message after what it depends on'),('read-your-writes','broken by the cache demo (chapter 2)'),('eventual','AP replicas converge after heal')],
 's9_src':'Jepsen, "Consistency models" (jepsen.io/consistency); Herlihy & Wing, TOPLAS 12(3), 1990.',
 's10_t':'PACELC: real systems','pacelc_h':['system','if Partition','Else','note'],
 'pacelc':[('etcd','C','C','linearizable reads by default (quorum)'),('ZooKeeper','C','C (writes)','reads are local: stale without sync()'),('Spanner','C','C','TrueTime; "effectively CA" (Brewer 2017)'),('Cassandra','A','L','tunable per query (ONE … QUORUM)'),('DynamoDB','A','L','eventual reads by default; strong reads optional'),('Kafka','C or A','L or C','acks, min.insync.replicas, unclean leader election'),('Redis + replicas','A','L','asynchronous replication: acknowledged writes can be lost (Jepsen 2013)')],
 's10_src':common_pacelc_src_en,
 's11_t':'"Under load strong consistency is the bottleneck" — measured','bench_h':['64 clients; one run each, 2026-12-08, commits ebf66c7 and ddc1f02 (one sender), load 0.9–11.8','CP','AP'],
 'bench_rows':[['sends/s, closed loop','1 440','2 240'],['ack p50 at 500 sends/s','28.0 ms','3.92 ms'],['one sender, ack p50','3.46 ms','1.34 ms']],
 's11_p':'AP answers after one local fsync; CP after a quorum commit. At the peak both fill the two cores they share with the load generator, so the throughput ratio is CPU per send; the latency ratio is the quorum wait.',
 's11_src':'docs/benchmarks.md, "Where they stand now (session 10)"; make bench-targets. One run of each command: a throughput peak is not a seeded chaos run, and make course-numbers does not remake it.',
 's12_t':'Misconceptions to leave at the door',
 's12_li':['"Pick two of three" — you pick what to give up <i>during a partition</i>.','"CP never shows stale data" — local reads and caches do.','"AP means no consistency" — AP here is causal and converges.','"99.9 % uptime is CAP\u2019s A" — A is a property of every request, not an SLA.','"A single database is CA" — it has no partition to tolerate; it is down when it fails.'],
 's13_t':'Try it','s13_p':'Course: docs/course/README.md · class kit: docs/course/class/ · dashboard: the URL mpim lab up prints.',
}
ZH={
 'other':'en.html',
 's1_t':'可以动手运行的 CAP','s1_sub':'一个真实的即时通讯系统，一致性是一个开关：AP 或 CP；真实的进程、真实的 Raft、真实的故障，全部实测。','s1_nav':'→ 或空格：下一页 · ←：上一页 · Home / End',
 's2_t':'定理说了什么（Gilbert 与 Lynch，2002）',
 's2_li':['<b>C</b>：线性一致性——每个操作看起来都在它被调用与得到应答之间的某一瞬间生效。','<b>A</b>：每个没有故障的节点收到的请求都会得到应答。','<b>P</b>：关于网络的假设——节点之间的消息可能丢失，而且可以丢任意多条。','定理：当消息可能丢失时，没有系统能在每一次运行中同时保证 C 和 A。具备分区容错性，是指在断开期间保住 C <i>或</i> A。'],
 's2_src':'Gilbert & Lynch，SIGACT News 33(2)，2002。断开之后重新收敛是最终一致性——另一种性质。',
 's3_t':'证明，画成时间线','proof_cut':'断开：G1 与 G2 无法通信','proof_after':'读在写的 ok 之后才开始','proof_aria':'两个节点；断开期间 G1 确认了一次写，随后 G2 上的读返回旧值。',
 's3_p':'如果 G2 应答（A），它只能答 v0——但这次读开始于 v1 被确认之后：不满足线性一致性（C）。与写重叠的读可以合法地看不到它；证明需要的是在 <code>ok</code> 之后才开始的读。',
 's4_t':'Brewer，十二年之后（2012）',
 's4_li':['"三选二"会误导：分区很少发生，没有分区时 C 和 A 可以兼得。','选择针对每个操作、每次分区，而不是给整个系统一次定终身。','关键在于发现分区、分区期间的模式，以及分区之后的恢复。','崩溃不是分区：故障的节点不可用，但仍然一致。'],
 's4_src':'Brewer，"CAP Twelve Years Later: How the Rules Have Changed"，IEEE Computer 45(2)，2012。',
 's5_t':'实验室能制造的分区','shapes_note':'故障层会扣住跨越断口的流量：连接卡住而不会被重置——就像真实的网络。','shapes_aria':'四种分区形状：对半、隔离领导者、多数环、桥。',
 's6_t':'Raft：为什么少数派写不进去','raft_leader':'领导者，任期 2','raft_commit':'已提交：多数派持有','raft_note':'一条日志被多数派持有后才提交；被隔开的少数派永远凑不齐多数。','raft_aria':'一个领导者和两个跟随者及其日志；日志在多数派持有后提交。',
 's6_p':'hashicorp/raft 1.7 默认开启预投票：被隔离的节点不会抬高任期，回来时也不会扰乱集群。',
 's7_t':'mpim 的 CP：领导者被隔开',
 's7_li':['写在多数派提交之后才被确认。','被隔开的一侧拒绝：<code>unavailable</code>（未执行）或 <code>timeout</code>（结果未知）——绝不会给出虚假的 <code>ok</code>。','五个种子（<code>--quick</code>，中位数；表在第 1 章）：被隔开的一侧确认了 <b><!-- n:isolate-leader/cp/cut.sends -->13<!-- /n --> 次写中的 <!-- n:isolate-leader/cp/cut.acked_while_cut -->0<!-- /n --> 次</b>；多数派 <!-- n:isolate-leader/cp/rest.share -->99.6%<!-- /n -->；丢失 <!-- n:isolate-leader/cp/lost -->0<!-- /n -->；线性一致。'],
 's7_src':'docs/course/zh/01-cap.md，"实验：一次分区，三种系统"。',
 's8_t':'mpim 的 AP：每一侧都能写',
 's8_li':['每个节点立即接受，打上混合逻辑时钟，再通过 Redis 发布。','顺序是确定的（时钟、来源、id）；在听到所有节点之前消息保持 <i>tentative</i>；晚到的消息插到前面时发送 <code>resync</code>。','修复（发件箱、反熵）让副本收敛——恢复后 <!-- n:isolate-leader/ap/convergence_ms -->142 ms<!-- /n --> 收敛（第 1 章的中位数）。','关掉修复（朴素设计）：Redis 发布订阅至多一次——中位数丢失了 <!-- n:isolate-leader/ap-norepair/lost -->453<!-- /n --> 条已确认的消息。'],
 's9_t':'一致性阶梯，在实验室里','ladder_aria':'从强到弱的五种一致性模型，每一种都对应实验室里能看到的现象。',
 'ladder':[('线性一致','CP 通过 ReadIndex 读'),('顺序一致','CP 本地读：同一日志顺序的一个前缀，可能落后'),('因果一致','AP 在依赖之后才投递消息'),('读己之写','被缓存演示打破（第 2 章）'),('最终一致','AP 副本在恢复后收敛')],
 's9_src':'Jepsen，"Consistency models"（jepsen.io/consistency）；Herlihy & Wing，TOPLAS 12(3)，1990。',
 's10_t':'PACELC：真实系统','pacelc_h':['系统','有分区时','否则','说明'],
 'pacelc':[('etcd','C','C','默认线性一致读（多数派）'),('ZooKeeper','C','C（写）','读是本地的：不调用 sync() 可能读到旧值'),('Spanner','C','C','TrueTime；"实际上 CA"（Brewer 2017）'),('Cassandra','A','L','每次查询可调（ONE … QUORUM）'),('DynamoDB','A','L','默认最终一致读；可选强一致读'),('Kafka','C 或 A','L 或 C','acks、min.insync.replicas、不干净的领导者选举'),('Redis 主从','A','L','异步复制：已确认的写可能丢失（Jepsen 2013）')],
 's10_src':'来源：Abadi 2012（PA/EL：Dynamo、Cassandra；PC/EC：VoltDB）；etcd 文档 "API guarantees"；ZooKeeper Programmer\u2019s Guide "Consistency guarantees"；Brewer 2017 "Spanner, TrueTime and the CAP Theorem"；AWS DynamoDB 文档 "Read consistency"；Kafka 文档 acks / min.insync.replicas；Redis 文档 "Replication" 与 Jepsen 2013 对 Sentinel 的测试。',
 's11_t':'"高并发下强一致性会成为瓶颈"——实测','bench_h':['64 个客户端；各一次运行，2026-12-08，提交 ebf66c7 和 ddc1f02（单个发送者），负载 0.9–11.8','CP','AP'],
 'bench_rows':[['每秒发送，闭环','1 440','2 240'],['500 次/秒时确认延迟 p50','28.0 ms','3.92 ms'],['单个发送者，确认延迟 p50','3.46 ms','1.34 ms']],
 's11_p':'AP 在一次本地 fsync 之后应答；CP 在多数派提交之后应答。峰值时两者都占满了与压测程序共用的两个核，所以吞吐量之比取决于每次发送的 CPU；延迟之比才是等待法定人数的代价。',
 's11_src':'docs/benchmarks.md，"Where they stand now (session 10)"；make bench-targets。每条命令各运行一次：吞吐量峰值不是带种子的混沌运行，make course-numbers 不会重做它。',
 's12_t':'进门前先放下的误解',
 's12_li':['"三选二"——你选择的是<i>分区期间</i>放弃什么。','"CP 永远不会读到旧数据"——本地读和缓存会。','"AP 就是没有一致性"——这里的 AP 是因果一致的，并且会收敛。','"99.9% 的可用率就是 CAP 的 A"——A 是对每个请求的性质，不是 SLA。','"单机数据库是 CA"——它没有需要容忍的分区；它故障时就不可用。'],
 's13_t':'动手试试','s13_p':'课程：docs/course/zh/README.md · 课堂材料：docs/course/zh/class/ · 仪表盘：mpim lab up 打印的地址。',
}
open(os.path.join(HERE, 'en.html'),'w').write(deck(EN,'en'))
open(os.path.join(HERE, 'zh.html'),'w').write(deck(ZH,'zh'))
print("ok")

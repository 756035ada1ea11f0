#!/usr/bin/env python3
"""Generates src/data/text/unicode_tables.inc for the C++ WordPiece tokenizer.

Run from anywhere after `bash tests/tokenizer_reference/setup.sh`:
    python3 tests/tokenizer_reference/gen_unicode_tables.py

Why two sources:
  * Canonical decompositions (NFD) and canonical combining classes come from
    Python's `unicodedata`; they have been stable for the characters BERT
    vocabularies contain.
  * The character classes Hugging Face's tokenizers (0.22, the version pinned
    by the npm reference package) uses are NOT those of any single Unicode
    version: punctuation, non-spacing marks and "other" (control) come from
    the `unicode_categories` crate (Unicode 8, and it never treats unassigned
    code points as control), while whitespace and lowercase come from Rust's
    std (Unicode 16). Python's unicodedata (another version) would disagree
    on a few hundred code points. So these classes are measured from the
    reference implementation itself, one code point at a time, through the
    pinned node binding, and cross-checked against unicodedata (the
    differences are printed) so that a surprise is visible.
"""
import json
import os
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, 'src', 'data', 'text', 'unicode_tables.inc')

PROBE_JS = r"""
const t = require('@anush008/tokenizers');
const only = (o) => t.bertNormalizer(Object.assign(
  {cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false}, o));
const clean = only({cleanText: true}), lower = only({lowercase: true});
const strip = only({stripAccents: true}), cjk = only({handleChineseChars: true});
const pre = t.bertPreTokenizer();
const marksOnly = t.stripAccentsNormalizer();
const res = {clean: {}, lower: {}, strip: {}, cjk: [], punct: [], ws: [], marks: []};
for (let cp = 0; cp <= 0x10FFFF; cp++) {
  if (cp >= 0xD800 && cp <= 0xDFFF) continue;
  const ch = String.fromCodePoint(cp);
  let o = clean.normalizeString(ch); if (o !== ch) res.clean[cp] = o;
  o = lower.normalizeString(ch); if (o !== ch) res.lower[cp] = o;
  o = strip.normalizeString(ch); if (o !== ch) res.strip[cp] = o;
  if (cjk.normalizeString(ch) !== ch) res.cjk.push(cp);
  if (marksOnly.normalizeString(ch) === '') res.marks.push(cp);
  const n = pre.preTokenizeString('a' + ch + 'a').length;
  if (n === 3) res.punct.push(cp); else if (n === 2) res.ws.push(cp);
}
process.stdout.write(JSON.stringify(res));
"""


def probe():
    env = dict(os.environ, NODE_PATH=os.path.join(HERE, 'node_modules'))
    try:
        out = subprocess.run(['node', '-e', PROBE_JS], env=env, check=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f'probe of @anush008/tokenizers failed ({e}); '
                 'run tests/tokenizer_reference/setup.sh first')
    r = json.loads(out)
    for key in ('clean', 'lower', 'strip'):
        r[key] = {int(k): v for k, v in r[key].items()}
    return r


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def full_nfd(c):
    return [ord(x) for x in unicodedata.normalize('NFD', chr(c))]


def is_hangul_syllable(c):
    return 0xAC00 <= c <= 0xD7A3


def wrap(items, per_line):
    lines = []
    for i in range(0, len(items), per_line):
        lines.append('    ' + ', '.join(items[i:i + per_line]) + ',')
    return '\n'.join(lines)


def main():
    r = probe()
    all_cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]

    control = {c for c, v in r['clean'].items() if v == ''}
    to_space = {c for c, v in r['clean'].items() if v == ' '}
    odd = {c for c, v in r['clean'].items() if v not in ('', ' ')}
    assert not odd, f'clean_text maps code points to something else: {sorted(odd)[:10]}'
    whitespace = set(r['ws'])
    # clean_text drops control characters first and maps the remaining
    # whitespace to ' '; the C++ code relies on that being the whole story.
    assert to_space | {0x20} == whitespace - control, 'clean_text whitespace is not ws - control'
    punct = set(r['punct'])

    # Strip accents = NFD then drop non-spacing marks. A lone code point that
    # strips to nothing is a mark; a decomposable one must strip to its NFD
    # without the marks, which checks unicodedata's NFD against the reference.
    marks = {c for c, v in r['strip'].items() if v == ''}
    decomp = {}
    for c in all_cps:
        if is_hangul_syllable(c):
            continue  # decomposed algorithmically in C++
        d = full_nfd(c)
        if d == [c]:
            continue
        expected = ''.join(chr(x) for x in d if x not in marks)
        got = r['strip'].get(c, chr(c))
        if got != expected:
            # The reference's NFD tables predate this decomposition.
            print(f'note: reference does not decompose U+{c:04X}; left out', file=sys.stderr)
            continue
        decomp[c] = d
    for c, v in r['strip'].items():
        if v != '' and c not in decomp and not is_hangul_syllable(c):
            sys.exit(f'reference strips U+{c:04X} to {v!r}, which unicodedata does not predict')

    ccc = [(c, unicodedata.combining(chr(c))) for c in all_cps if unicodedata.combining(chr(c))]

    lower_single, lower_multi = {}, {}
    for c, v in r['lower'].items():
        if len(v) == 1:
            lower_single[c] = ord(v)
        else:
            lower_multi[c] = [ord(x) for x in v]

    # Report how far the reference is from this Python's Unicode data.
    py_punct = {c for c in all_cps if unicodedata.category(chr(c)).startswith('P')}
    py_marks = {c for c in all_cps if unicodedata.category(chr(c)) == 'Mn'}
    print(f'unicodedata {unicodedata.unidata_version}: punctuation differs on '
          f'{len(punct ^ py_punct)} code points, Mn on {len(marks ^ py_marks)}', file=sys.stderr)

    # Lowercase as runs (first, last, delta, stride): most cased blocks
    # alternate upper/lower (stride 2) or are contiguous (stride 1).
    lower_runs = []
    for c in sorted(lower_single):
        delta = lower_single[c] - c
        if lower_runs:
            first, last, d, stride = lower_runs[-1]
            if d == delta and (c - last) in (1, 2) and (first == last or c - last == stride):
                lower_runs[-1] = [first, c, d, c - last if first == last else stride]
                continue
        lower_runs.append([c, c, delta, 1])

    data, entries = [], []
    for c in sorted(decomp):
        entries.append(f'{{0x{c:X}, {len(data)}, {len(decomp[c])}}}')
        data.extend(f'0x{x:X}' for x in decomp[c])

    def fmt_ranges(rs):
        return wrap([f'{{0x{a:X}, 0x{b:X}}}' for a, b in rs], 6)

    ccc_runs = []
    for c, k in ccc:
        if ccc_runs and ccc_runs[-1][1] == c - 1 and ccc_runs[-1][2] == k:
            ccc_runs[-1][1] = c
        else:
            ccc_runs.append([c, c, k])

    cjk_ranges = ranges(r['cjk'])
    parts = [
        '// Generated by tests/tokenizer_reference/gen_unicode_tables.py; do not edit.',
        '// Character classes measured from Hugging Face tokenizers 0.22 (see the script);',
        f'// decompositions and combining classes from Unicode {unicodedata.unidata_version}.',
        '// Included by unicode_props.cpp inside an anonymous namespace.',
        '',
        '// Dropped by BertNormalizer clean_text (control/format/private use, NUL, U+FFFD).',
        'constexpr CodeRange kControlRanges[] = {', fmt_ranges(ranges(control)), '};',
        '// Rust char::is_whitespace: split points of BertPreTokenizer.',
        'constexpr CodeRange kWhitespaceRanges[] = {', fmt_ranges(ranges(whitespace)), '};',
        '// Punctuation for BertPreTokenizer (ASCII punctuation plus category P*).',
        'constexpr CodeRange kPunctuationRanges[] = {', fmt_ranges(ranges(punct)), '};',
        '// Non-spacing marks (Mn) dropped by strip_accents.',
        'constexpr CodeRange kNonspacingMarkRanges[] = {', fmt_ranges(ranges(marks)), '};',
        '// Combining marks (M*) dropped by the StripAccents normalizer (without NFD).',
        'constexpr CodeRange kCombiningMarkRanges[] = {', fmt_ranges(ranges(r['marks'])), '};',
        '// Chinese characters that handle_chinese_chars surrounds with spaces.',
        'constexpr CodeRange kChineseRanges[] = {', fmt_ranges(cjk_ranges), '};',
        '// Canonical combining classes (non-zero only), for canonical ordering.',
        'constexpr CombiningClassRange kCombiningClassRanges[] = {',
        wrap([f'{{0x{a:X}, 0x{b:X}, {k}}}' for a, b, k in ccc_runs], 5), '};',
        '// Single code point lowercase mappings as runs: c in [first, last] with',
        '// (c - first) % stride == 0 maps to c + delta.',
        'constexpr LowercaseRun kLowercaseRuns[] = {',
        wrap([f'{{0x{a:X}, 0x{b:X}, {d}, {s}}}' for a, b, d, s in lower_runs], 4), '};',
        '// Lowercase mappings to several code points.',
        'constexpr LowercaseMulti kLowercaseMulti[] = {',
        wrap(['{0x%X, {%s}}' % (c, ', '.join(f'0x{x:X}' for x in v) + ''.join(', 0' for _ in range(3 - len(v))))
              for c, v in sorted(lower_multi.items())], 2), '};',
        '// Full canonical decompositions (Hangul syllables are algorithmic).',
        'constexpr DecompositionEntry kDecompositions[] = {', wrap(entries, 4), '};',
        'constexpr char32_t kDecompositionData[] = {', wrap(data, 10), '};',
        '',
    ]
    with open(OUT, 'w', encoding='utf-8') as f:
        f.write('\n'.join(parts))
    print(f'wrote {OUT}: {len(decomp)} decompositions, {len(lower_runs)} lowercase runs, '
          f'{len(lower_multi)} multi lowercase, {len(ccc_runs)} ccc runs', file=sys.stderr)


if __name__ == '__main__':
    main()

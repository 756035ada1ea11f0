#include "data/text/text_augment.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "data/text/utf8.h"

namespace automm {

// ---------------------------------------------------------------- WordNet

struct WordNet::PosFiles {
  char pos;
  std::string index, data;                 // whole files
  std::vector<uint32_t> index_lines;       // starts of the sorted entry lines
  std::unordered_map<std::string, std::vector<std::string>> exceptions;  // inflected -> bases
};

namespace {

constexpr char kPosLetters[] = {'n', 'v', 'a', 'r'};
constexpr const char* kPosNames[] = {"noun", "verb", "adj", "adv"};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read WordNet file '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string_view first_field(std::string_view line) { return line.substr(0, line.find(' ')); }

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

int pos_slot(char pos) {
  for (int i = 0; i < 4; ++i)
    if (kPosLetters[i] == pos) return i;
  throw std::invalid_argument(std::string("unknown WordNet part of speech '") + pos + "': expected n, v, a or r");
}

// Synset offsets of `lemma` in one part of speech's index (empty if absent).
// Entry: lemma pos synset_cnt p_cnt [ptr_symbol x p_cnt] sense_cnt tagsense_cnt offset x synset_cnt
std::vector<uint32_t> synset_offsets(const WordNet::PosFiles& f, const std::string& lemma) {
  auto line_at = [&](uint32_t start) {
    const size_t end = f.index.find('\n', start);
    return std::string_view(f.index).substr(start, end == std::string::npos ? std::string::npos : end - start);
  };
  auto it = std::lower_bound(f.index_lines.begin(), f.index_lines.end(), lemma,
                             [&](uint32_t start, const std::string& key) { return first_field(line_at(start)) < key; });
  if (it == f.index_lines.end() || first_field(line_at(*it)) != lemma) return {};
  std::istringstream fields{std::string(line_at(*it))};
  std::string word, pos, skip;
  size_t synset_cnt = 0, p_cnt = 0;
  fields >> word >> pos >> synset_cnt >> p_cnt;
  for (size_t i = 0; i < p_cnt + 2; ++i) fields >> skip;  // pointer symbols, sense_cnt, tagsense_cnt
  std::vector<uint32_t> offsets(synset_cnt);
  for (uint32_t& o : offsets) fields >> o;
  return offsets;
}

// Lemma names of the synset at byte `offset` of a data file.
// Line: offset lex_filenum ss_type w_cnt(hex) [word lex_id(hex)] x w_cnt ...
void append_synset_lemmas(const WordNet::PosFiles& f, uint32_t offset, std::vector<std::string>* out) {
  if (offset >= f.data.size()) return;
  std::istringstream fields(f.data.substr(offset, f.data.find('\n', offset) - offset));
  std::string skip, count_hex, word;
  fields >> skip >> skip >> skip >> count_hex;
  const long count = std::strtol(count_hex.c_str(), nullptr, 16);
  for (long i = 0; i < count && fields >> word >> skip; ++i) {
    // Adjectives may carry a syntactic marker: "galore(ip)", "outback(a)".
    if (f.pos == 'a' && !word.empty() && word.back() == ')') word.erase(word.rfind('('));
    out->push_back(word);
  }
}

}  // namespace

WordNet::WordNet(std::vector<PosFiles> files) : files_(std::move(files)) {}
WordNet::~WordNet() = default;

std::shared_ptr<const WordNet> WordNet::load(const std::string& dir_arg) {
  std::string dir = dir_arg;
  if (dir.empty()) {
    const char* env = std::getenv("WNSEARCHDIR");
    dir = env && *env ? env : "/usr/share/wordnet";
  }
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const WordNet>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = loaded.find(dir); it != loaded.end()) return it->second;

  const std::filesystem::path root(dir);
  if (!std::filesystem::exists(root / "index.noun"))
    throw std::runtime_error("WordNet database not found in '" + dir +
                             "' (no index.noun): install Debian's wordnet-base package "
                             "(apt-get install wordnet-base) or point WNSEARCHDIR at a WordNet 3.0 dict folder");
  std::vector<PosFiles> files(4);
  for (int p = 0; p < 4; ++p) {
    PosFiles& f = files[p];
    f.pos = kPosLetters[p];
    f.index = read_file(root / (std::string("index.") + kPosNames[p]));
    f.data = read_file(root / (std::string("data.") + kPosNames[p]));
    // Lines that start with a space are the license header.
    for (size_t start = 0; start < f.index.size();) {
      const size_t end = f.index.find('\n', start);
      if (f.index[start] != ' ' && f.index[start] != '\n') f.index_lines.push_back(static_cast<uint32_t>(start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    const auto exc_path = root / (std::string(kPosNames[p]) + ".exc");
    if (std::filesystem::exists(exc_path)) {
      std::istringstream lines(read_file(exc_path));
      std::string line;
      while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string inflected, base;
        fields >> inflected;
        while (fields >> base) f.exceptions[inflected].push_back(base);
      }
    }
  }
  auto wordnet = std::make_shared<const WordNet>(std::move(files));
  loaded[dir] = wordnet;
  return wordnet;
}

std::vector<std::string> WordNet::base_forms(const std::string& word, char pos) const {
  const PosFiles& f = files_[pos_slot(pos)];
  // WordNet's detachment rules (morph.c), as NLTK applies them.
  static const std::vector<std::pair<std::string, std::string>> kRules[4] = {
      {{"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"},
       {"men", "man"}, {"ies", "y"}},
      {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
      {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
      {}};
  std::vector<std::string> forms{word};
  if (auto it = f.exceptions.find(word); it != f.exceptions.end()) {
    forms.insert(forms.end(), it->second.begin(), it->second.end());
  } else {
    for (const auto& [suffix, replacement] : kRules[pos_slot(pos)])
      if (word.size() > suffix.size() && word.compare(word.size() - suffix.size(), suffix.size(), suffix) == 0)
        forms.push_back(word.substr(0, word.size() - suffix.size()) + replacement);
  }
  std::vector<std::string> found;
  for (const std::string& form : forms)
    if (std::find(found.begin(), found.end(), form) == found.end() && !synset_offsets(f, form).empty())
      found.push_back(form);
  return found;
}

std::vector<std::string> WordNet::synonyms(const std::string& word) const {
  std::string key = ascii_lower(word);
  std::replace(key.begin(), key.end(), ' ', '_');
  std::vector<std::string> lemmas;
  if (key.empty()) return lemmas;
  for (const PosFiles& f : files_)
    for (const std::string& form : base_forms(key, f.pos))
      for (uint32_t offset : synset_offsets(f, form)) append_synset_lemmas(f, offset, &lemmas);
  const std::string lower_word = ascii_lower(word);
  lemmas.erase(std::remove_if(lemmas.begin(), lemmas.end(),
                              [&](const std::string& l) { return ascii_lower(l) == lower_word; }),
               lemmas.end());
  return lemmas;
}

// ---------------------------------------------------------------- nlpaug's tokens

namespace {

// Python's \w on one code point: letters and numbers of any script and '_'.
// Outside ASCII this approximates Unicode's categories by the blocks that hold
// no letters or digits (spaces, punctuation, symbols, marks, emoji).
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (c < 0x100)  // Latin-1: letters, ª º µ and the superscript digits and fractions
    return c >= 0xC0 ? (c != 0xD7 && c != 0xF7)
                     : (c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA ||
                        (c >= 0xBC && c <= 0xBE));
  static constexpr std::pair<char32_t, char32_t> kNonWord[] = {
      {0x300, 0x36F},                                   // combining marks
      {0x1680, 0x1680}, {0x2000, 0x206F},              // spaces, general punctuation
      {0x20A0, 0x20FF}, {0x2100, 0x214F},              // currency, letterlike symbols (approximate)
      {0x2190, 0x2BFF},                                 // arrows, math, technical, box drawing, dingbats
      {0x2E00, 0x2E7F}, {0x3000, 0x3004}, {0x3008, 0x3020}, {0x3030, 0x3030},  // CJK punctuation
      {0xFE00, 0xFE0F}, {0xFE30, 0xFE6F}, {0xFF00, 0xFF0F}, {0xFF1A, 0xFF20}, {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65},
      {0xFFF0, 0xFFFF}, {0x1F000, 0x1FAFF}, {0xE0000, 0xE007F}};
  for (const auto& [lo, hi] : kNonWord)
    if (c >= lo && c <= hi) return false;
  return true;
}

bool is_unicode_space(char32_t c) {
  return (c >= 0x9 && c <= 0xD) || c == 0x20 || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Python's str.strip(): Unicode whitespace at both ends.
std::string strip(const std::string& text) {
  const auto chars = decode_utf8_chars(text);
  size_t b = 0, e = chars.size();
  while (b < e && is_unicode_space(chars[b].cp)) ++b;
  while (e > b && is_unicode_space(chars[e - 1].cp)) --e;
  if (b == e) return "";
  return text.substr(chars[b].start, chars[e - 1].start + chars[e - 1].len - chars[b].start);
}

// nlpaug's Tokenizer.tokenizer: re.split(r'(\W)') keeping the separators, minus
// blank pieces.
std::vector<std::string> nlpaug_tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  std::string word;
  for (const Utf8Char& c : decode_utf8_chars(text)) {
    const std::string bytes = text.substr(c.start, c.len);
    if (is_word_char(c.cp)) {
      word += bytes;
      continue;
    }
    if (!word.empty()) tokens.push_back(std::move(word)), word.clear();
    if (!is_unicode_space(c.cp)) tokens.push_back(bytes);
  }
  if (!word.empty()) tokens.push_back(std::move(word));
  return tokens;
}

// nlpaug's Tokenizer.reverse_tokenizer: join with spaces, pull sentence
// punctuation back onto the previous word, tighten brackets.
std::string nlpaug_detokenize(const std::vector<std::string>& tokens) {
  std::string text;
  for (const std::string& t : tokens) {
    if (t.empty()) continue;  // deleted
    if (!text.empty()) text += ' ';
    text += t;
  }
  static const std::pair<std::regex, std::string> kRules[] = {
      {std::regex(R"(\s([.,:;?!%]+)([ '"`]))"), "$1$2"},
      {std::regex(R"(\s([.,:;?!%]+)$)"), "$1"},
      {std::regex(R"(\s([\[\(\{<])\s)"), " $1"},
      {std::regex(R"(\s([\]\)\}>])\s)"), "$1 "}};
  for (const auto& [pattern, replacement] : kRules) text = std::regex_replace(text, pattern, replacement);
  return strip(text);
}

// `token in string.punctuation` (a substring test in nlpaug).
bool is_punctuation_token(const std::string& token) {
  static const std::string kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  return kPunctuation.find(token) != std::string::npos;
}

// nlpaug's generate_aug_cnt with aug_min = 1 and no aug_max.
size_t aug_count(double strength, size_t size) {
  return std::max<size_t>(1, static_cast<size_t>(strength * static_cast<double>(size)));
}

size_t uniform_index(size_t n, std::mt19937_64& rng) {
  return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
}

// random.sample: `count` distinct items in random order.
template <typename T>
std::vector<T> sample(std::vector<T> items, size_t count, std::mt19937_64& rng) {
  count = std::min(count, items.size());
  for (size_t i = 0; i < count; ++i) std::swap(items[i], items[i + uniform_index(items.size() - i, rng)]);
  items.resize(count);
  return items;
}

// Indices nlpaug may change: not punctuation, then `keep`.
template <typename Keep>
std::vector<size_t> pick_tokens(const std::vector<std::string>& tokens, double strength, std::mt19937_64& rng,
                                Keep keep) {
  std::vector<size_t> candidates;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!is_punctuation_token(tokens[i]) && keep(tokens[i])) candidates.push_back(i);
  return sample(std::move(candidates), aug_count(strength, tokens.size()), rng);
}

// nlpaug's get_word_case on ASCII letters.
enum class WordCase { kEmpty, kCapitalize, kUpper, kLower, kMixed, kUnknown };
WordCase word_case(const std::string& w) {
  if (w.empty()) return WordCase::kEmpty;
  bool any_upper = false, any_lower = false;
  for (char c : w) any_upper |= (c >= 'A' && c <= 'Z'), any_lower |= (c >= 'a' && c <= 'z');
  const bool first_upper = w[0] >= 'A' && w[0] <= 'Z';
  if (w.size() == 1 && first_upper) return WordCase::kCapitalize;
  if (any_upper && !any_lower) return WordCase::kUpper;
  if (any_lower && !any_upper) return WordCase::kLower;
  for (size_t i = 1; i < w.size(); ++i)
    if (w[i] >= 'A' && w[i] <= 'Z') return WordCase::kMixed;
  return first_upper ? WordCase::kCapitalize : WordCase::kUnknown;
}

std::string capitalize(std::string w) {  // Python's str.capitalize on ASCII
  w = ascii_lower(std::move(w));
  if (!w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = static_cast<char>(w[0] - 'a' + 'A');
  return w;
}

std::string align_capitalization(const std::string& source, const std::string& dest) {
  return word_case(source) == WordCase::kCapitalize && word_case(dest) == WordCase::kLower ? capitalize(dest)
                                                                                             : dest;
}

}  // namespace

// ---------------------------------------------------------------- the ops

std::string synonym_replace(const std::string& text, double strength, std::mt19937_64& rng, const WordNet& wordnet) {
  const std::string data = strip(text);
  std::vector<std::string> tokens = nlpaug_tokenize(data);
  if (tokens.empty()) return data;
  static const std::vector<std::string> kDeterminers = {"a",    "an",   "the",  "this",  "that",    "these",
                                                        "those", "all", "some", "any",   "no",      "every",
                                                        "each", "another", "both", "either", "neither"};
  auto not_determiner = [&](const std::string& t) {
    return std::find(kDeterminers.begin(), kDeterminers.end(), ascii_lower(t)) == kDeterminers.end();
  };
  for (size_t i : pick_tokens(tokens, strength, rng, not_determiner)) {
    const std::vector<std::string> candidates = wordnet.synonyms(tokens[i]);
    if (candidates.empty()) continue;
    std::string replacement = ascii_lower(candidates[uniform_index(candidates.size(), rng)]);
    std::replace(replacement.begin(), replacement.end(), '_', ' ');
    std::replace(replacement.begin(), replacement.end(), '-', ' ');
    tokens[i] = align_capitalization(tokens[i], replacement);
  }
  return nlpaug_detokenize(tokens);
}

std::string random_delete(const std::string& text, double strength, std::mt19937_64& rng) {
  const std::string data = strip(text);
  std::vector<std::string> tokens = nlpaug_tokenize(data);
  if (tokens.size() < 2) return data;
  const std::vector<size_t> picked = pick_tokens(tokens, strength, rng, [](const std::string&) { return true; });
  const bool first_deleted = std::find(picked.begin(), picked.end(), 0) != picked.end();
  const bool second_deleted = std::find(picked.begin(), picked.end(), 1) != picked.end();
  // Removing the first word hands its capital letter on to the next one.
  if (first_deleted && !second_deleted) tokens[1] = align_capitalization(tokens[0], tokens[1]);
  for (size_t i : picked) tokens[i].clear();
  return nlpaug_detokenize(tokens);
}

std::string random_swap(const std::string& text, double strength, std::mt19937_64& rng) {
  const std::string data = strip(text);
  std::vector<std::string> tokens = nlpaug_tokenize(data);
  if (tokens.size() < 2) return data;
  const size_t last = tokens.size() - 1;
  for (size_t i : pick_tokens(tokens, strength, rng, [](const std::string&) { return true; })) {
    const size_t j = i == 0 ? 1 : i == last ? last - 1 : (std::bernoulli_distribution(0.5)(rng) ? i + 1 : i - 1);
    std::string a = tokens[i], b = tokens[j];  // the words moving to j and to i
    // The sentence's capital letter stays at the front (nlpaug's change_case).
    if (i == 0) {
      tokens[0] = word_case(a) == WordCase::kCapitalize && word_case(b) == WordCase::kLower ? capitalize(b) : b;
      tokens[j] = word_case(a) == WordCase::kCapitalize ? ascii_lower(a) : a;
    } else if (j == 0) {
      tokens[0] = word_case(a) == WordCase::kLower ? capitalize(a) : a;
      tokens[i] = word_case(b) == WordCase::kCapitalize ? ascii_lower(b) : b;
    } else {
      tokens[i] = std::move(b), tokens[j] = std::move(a);
    }
    for (size_t k : {i, j})
      if (tokens[k] == "i") tokens[k] = "I";
  }
  return nlpaug_detokenize(tokens);
}

std::string insert_punctuation(const std::string& text, double strength, std::mt19937_64& rng) {
  static const char* const kMarks[] = {".", ",", "!", "?", ";", ":"};
  const std::string data = strip(text);
  std::vector<std::string> words;
  for (size_t start = 0;;) {
    const size_t end = data.find(' ', start);
    words.push_back(data.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  // AutoMM draws randint(1, int(p * n)), which fails below 1; clamp instead.
  const size_t most = std::max<size_t>(1, static_cast<size_t>(strength * static_cast<double>(words.size())));
  const size_t count = std::uniform_int_distribution<size_t>(1, most)(rng);
  std::vector<size_t> positions(words.size());
  for (size_t i = 0; i < positions.size(); ++i) positions[i] = i;
  std::vector<bool> marked(words.size(), false);
  for (size_t i : sample(std::move(positions), count, rng)) marked[i] = true;
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += ' ';
    if (marked[i]) out += std::string(kMarks[uniform_index(6, rng)]) + ' ';
    out += words[i];
  }
  return out;
}

const char* text_augment_op_name(TextAugmentOp op) {
  switch (op) {
    case TextAugmentOp::kIdentity: return "identity";
    case TextAugmentOp::kSynonymReplace: return "syn_replacement";
    case TextAugmentOp::kRandomDelete: return "random_delete";
    case TextAugmentOp::kRandomSwap: return "random_swap";
    case TextAugmentOp::kInsertPunctuation: return "insert_punc";
  }
  return "unknown";
}

std::string apply_text_augment_op(TextAugmentOp op, const std::string& text, double strength, std::mt19937_64& rng,
                                  const WordNet* wordnet) {
  if (op == TextAugmentOp::kIdentity || text.empty()) return text;
  if (op == TextAugmentOp::kSynonymReplace && wordnet == nullptr)
    throw std::invalid_argument("synonym replacement needs WordNet: pass WordNet::load()");
  // nlpaug's Augmenter.augment: retry an unchanged result up to 3 more times.
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::string out;
    switch (op) {
      case TextAugmentOp::kSynonymReplace: out = synonym_replace(text, strength, rng, *wordnet); break;
      case TextAugmentOp::kRandomDelete: out = random_delete(text, strength, rng); break;
      case TextAugmentOp::kRandomSwap: out = random_swap(text, strength, rng); break;
      case TextAugmentOp::kInsertPunctuation: out = insert_punctuation(text, strength, rng); break;
      case TextAugmentOp::kIdentity: break;
    }
    if (out != text) return out;
  }
  return text;
}

int64_t count_space_separated_words(const std::string& text) {
  return 1 + static_cast<int64_t>(std::count(text.begin(), text.end(), ' '));
}

std::string augment_text(const std::string& text, const TextAugmentOptions& options, std::mt19937_64& rng,
                         const WordNet* wordnet, TextAugmentOp* chosen) {
  if (chosen) *chosen = TextAugmentOp::kIdentity;
  if (options.max_scale <= 0 || count_space_separated_words(text) < options.detect_length) return text;
  if (wordnet == nullptr)
    throw std::invalid_argument(
        "text augmentation (model.hf_text.text_trivial_aug_maxscale > 0) needs WordNet for synonym replacement: "
        "pass WordNet::load()");
  const auto op = static_cast<TextAugmentOp>(uniform_index(kNumTextAugmentOps, rng));
  const double scale = std::uniform_real_distribution<double>(0.0, options.max_scale)(rng);
  if (chosen) *chosen = op;
  return apply_text_augment_op(op, text, op == TextAugmentOp::kInsertPunctuation ? kInsertPunctuationStrength : scale,
                               rng, wordnet);
}

// ---------------------------------------------------------------- normalize_text

namespace {

// Windows-1252's 0x80..0x9F; 0 where the code page leaves the byte undefined.
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

char32_t cp1252_to_unicode(unsigned char b) {
  if (b < 0x80 || b >= 0xA0) return b;
  const char32_t cp = kCp1252High[b - 0x80];
  return cp ? cp : b;  // Python raises here; keeping the byte's Latin-1 character is the gentle choice
}

// The Windows-1252 byte for `cp`, or -1 when the code page lacks it.
int unicode_to_cp1252(char32_t cp) {
  if (cp < 0x80 || (cp >= 0xA0 && cp <= 0xFF)) return static_cast<int>(cp);
  for (int i = 0; i < 32; ++i)
    if (kCp1252High[i] == cp && cp != 0) return 0x80 + i;
  return -1;
}

// bytes.decode("utf-8", errors=<each bad byte as its Windows-1252 character>).
// A bad stretch is decoded byte by byte either way, so the per-byte invalid
// characters of decode_utf8_chars give Python's result.
std::u32string decode_utf8_else_cp1252(const std::string& bytes) {
  std::u32string out;
  for (const Utf8Char& c : decode_utf8_chars(bytes))
    out.push_back(c.valid ? c.cp : cp1252_to_unicode(static_cast<unsigned char>(bytes[c.start])));
  return out;
}

}  // namespace

std::string repair_text_encoding(const std::string& text) {
  std::string bytes;  // text.encode("raw_unicode_escape")
  for (char32_t cp : decode_utf8(text)) {
    if (cp < 0x100) {
      bytes.push_back(static_cast<char>(cp));
    } else {
      char escape[16];
      std::snprintf(escape, sizeof escape, cp < 0x10000 ? "\\u%04x" : "\\U%08x", static_cast<unsigned>(cp));
      bytes += escape;
    }
  }
  std::string reencoded;  // .decode(utf-8 else cp1252).encode(cp1252 else utf-8)
  for (char32_t cp : decode_utf8_else_cp1252(bytes)) {
    const int b = unicode_to_cp1252(cp);
    if (b >= 0) reencoded.push_back(static_cast<char>(b));
    else append_utf8(cp, &reencoded);
  }
  std::string out;
  for (char32_t cp : decode_utf8_else_cp1252(reencoded)) append_utf8(cp, &out);
  return out;
}

namespace {

// unidecode's ASCII for U+00A0..U+00FF (U+0080..U+009F become nothing).
constexpr const char* kLatin1Ascii[96] = {
    " ",  "!",  "C/", "PS", "$?", "Y=", "|",  "SS", "\"", "(c)", "a",  "<<", "!",  "",   "(r)", "-",
    "deg", "+-", "2", "3",  "'",  "u",  "P",  "*",  ",",  "1",   "o",  ">>", " 1/4", " 1/2", " 3/4", "?",
    "A",  "A",  "A",  "A",  "A",  "A",  "AE", "C",  "E",  "E",   "E",  "E",  "I",  "I",  "I",   "I",
    "D",  "N",  "O",  "O",  "O",  "O",  "O",  "x",  "O",  "U",   "U",  "U",  "U",  "Y",  "Th",  "ss",
    "a",  "a",  "a",  "a",  "a",  "a",  "ae", "c",  "e",  "e",   "e",  "e",  "i",  "i",  "i",   "i",
    "d",  "n",  "o",  "o",  "o",  "o",  "o",  "/",  "o",  "u",   "u",  "u",  "u",  "y",  "th",  "y"};

// unidecode's ASCII for U+2010..U+203A.
constexpr const char* kPunctuationAscii[43] = {
    "-",  "-",  "-",  "-", "--", "--", "||", "_",   "'",   "'",  ",",  "'",  "\"", "\"", ",,",
    "\"", "+",  "++", "*", "*>", ".",  "..", "...", ".",   "\n", "\n\n", "",  "",   "",   "",
    "",   " ",  "%0", "%00", "'", "''", "'''", "`",  "``",  "```", "^",  "<",  ">"};

const char* ascii_for(char32_t cp) {
  if (cp >= 0x80 && cp < 0xA0) return "";
  if (cp >= 0xA0 && cp <= 0xFF) return kLatin1Ascii[cp - 0xA0];
  if (cp >= 0x2010 && cp <= 0x203A) return kPunctuationAscii[cp - 0x2010];
  switch (cp) {  // the rest of Windows-1252
    case 0x20AC: return "EUR";
    case 0x2122: return "(tm)";
    case 0x0192: return "f";
    case 0x02C6: return "^";
    case 0x02DC: return "~";
    case 0x0160: return "S";
    case 0x0161: return "s";
    case 0x0152: return "OE";
    case 0x0153: return "oe";
    case 0x017D: return "Z";
    case 0x017E: return "z";
    case 0x0178: return "Y";
    default: return nullptr;
  }
}

}  // namespace

std::string normalize_text(const std::string& text) {
  std::string out;
  for (char32_t cp : decode_utf8(repair_text_encoding(text))) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (const char* ascii = ascii_for(cp)) {
      out += ascii;
    } else {
      append_utf8(cp, &out);
    }
  }
  return out;
}

}  // namespace automm

// Text augmentation against the real WordNet files and nlpaug's rules, and
// normalize_text against Python's own codec chain (and unidecode when
// /usr/bin/python3 has it, Debian's python3-unidecode).
#include "data/text/text_augment.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/text/utf8.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::Contains;

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> words;
  std::istringstream in(s);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string ascii_lower_for_test(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::shared_ptr<const WordNet> wordnet_or_null() {
  if (!std::filesystem::exists("/usr/share/wordnet/index.noun") && !std::getenv("WNSEARCHDIR")) return nullptr;
  return WordNet::load();
}
#define REQUIRE_WORDNET(wn)                                                                     \
  auto wn = wordnet_or_null();                                                                  \
  if (!wn) GTEST_SKIP() << "WordNet files missing: install Debian's wordnet-base (scripts/setup.sh)"

const std::string kPlain =  // 40 lowercase words, no punctuation, no "i"
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu one two three four five six seven "
    "eight nine ten eleven twelve thirteen fourteen";

TEST(WordNet, SynonymsOfKnownWords) {
  REQUIRE_WORDNET(wn);
  const auto car = wn->synonyms("car");
  EXPECT_TRUE(has(car, "automobile"));
  EXPECT_TRUE(has(car, "motorcar"));
  EXPECT_FALSE(has(car, "car"));
  const auto happy = wn->synonyms("happy");
  EXPECT_TRUE(has(happy, "felicitous") || has(happy, "glad"));
  EXPECT_TRUE(wn->synonyms("Car") == car);  // looked up lowercase
  EXPECT_TRUE(has(wn->synonyms("ice cream"), "icecream"));  // multiword lemma
  EXPECT_TRUE(has(wn->synonyms("quickly"), "rapidly"));     // adverb
  EXPECT_TRUE(has(wn->synonyms("outback"), "remote"));      // adjective with a "(a)" marker stripped
  EXPECT_TRUE(wn->synonyms("qwzxv").empty());
  EXPECT_TRUE(wn->synonyms("").empty());
}

TEST(WordNet, MorphyFindsBaseForms) {
  REQUIRE_WORDNET(wn);
  EXPECT_EQ(wn->base_forms("cars", 'n'), std::vector<std::string>{"car"});
  EXPECT_TRUE(has(wn->base_forms("geese", 'n'), "goose"));  // noun.exc
  EXPECT_TRUE(has(wn->base_forms("running", 'v'), "run"));
  EXPECT_TRUE(has(wn->base_forms("went", 'v'), "go"));  // verb.exc
  EXPECT_TRUE(has(wn->base_forms("better", 'a'), "good"));
  EXPECT_TRUE(has(wn->base_forms("boxes", 'n'), "box"));
  EXPECT_TRUE(wn->base_forms("cars", 'r').empty());
  // nlpaug filters against the token as written, so the base form is a candidate.
  const auto cars = wn->synonyms("cars");
  EXPECT_TRUE(has(cars, "automobile"));
  EXPECT_TRUE(has(cars, "car"));
  EXPECT_THROW(wn->base_forms("car", 'x'), std::invalid_argument);
}

TEST(WordNet, MissingFolderThrowsWithAdvice) {
  const std::string msg = testing::message_of<std::runtime_error>([] { WordNet::load("/nonexistent/wordnet"); });
  EXPECT_TRUE(Contains(msg, "/nonexistent/wordnet"));
  EXPECT_TRUE(Contains(msg, "install Debian's wordnet-base package"));
}

TEST(WordNet, LoadTime) {
  REQUIRE_WORDNET(wn);
  const auto start = std::chrono::steady_clock::now();
  auto fresh = WordNet::load("/usr/share/wordnet/");  // another key: a real load, not the cached one
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("WordNet load: %.1f ms\n", ms);
  EXPECT_TRUE(has(fresh->synonyms("car"), "automobile"));
  EXPECT_EQ(WordNet::load("/usr/share/wordnet/").get(), fresh.get());  // cached
  EXPECT_LT(ms, 5000);
}

TEST(TextAugment, CountsWordsLikePythonSplit) {
  EXPECT_EQ(count_space_separated_words(""), 1);
  EXPECT_EQ(count_space_separated_words("a b"), 2);
  EXPECT_EQ(count_space_separated_words("a  b "), 4);
}

TEST(TextAugment, ShortOrDisabledTextIsUntouched) {
  const std::string nine = "one two three four five six seven eight nine";
  std::mt19937_64 rng(1);
  for (int seed = 0; seed < 50; ++seed) {
    EXPECT_EQ(augment_text(nine, {0.5, 10}, rng, nullptr), nine);
    EXPECT_EQ(augment_text(kPlain, {0.0, 10}, rng, nullptr), kPlain);
  }
  EXPECT_THROW(augment_text(kPlain, {0.5, 10}, rng, nullptr), std::invalid_argument);
}

TEST(TextAugment, DeleteRemovesAugPShareOfWords) {
  for (double strength : {0.01, 0.1, 0.25}) {
    const size_t expected = std::max<size_t>(1, static_cast<size_t>(strength * 40));
    for (uint64_t seed = 0; seed < 100; ++seed) {
      std::mt19937_64 rng(seed);
      const auto out = split_spaces(random_delete(kPlain, strength, rng));
      ASSERT_EQ(out.size(), 40 - expected) << strength;
    }
  }
}

TEST(TextAugment, SwapMovesWordsAndKeepsThem) {
  const auto original = split_spaces(kPlain);
  auto sorted_original = original;
  std::sort(sorted_original.begin(), sorted_original.end());
  double moved = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    // 4 swaps of neighbours; a word reaching the front is capitalized, as in nlpaug
    auto out = split_spaces(ascii_lower_for_test(random_swap(kPlain, 0.1, rng)));
    ASSERT_EQ(out.size(), original.size());
    size_t diff = 0;
    for (size_t i = 0; i < out.size(); ++i) diff += out[i] != original[i];
    EXPECT_LE(diff, 8u);
    moved += static_cast<double>(diff);
    std::sort(out.begin(), out.end());
    EXPECT_EQ(out, sorted_original);
  }
  EXPECT_GT(moved / 200, 3.0);  // swaps can undo each other, but mostly move words
}

TEST(TextAugment, SwapKeepsTheCapitalAtTheFront) {
  std::mt19937_64 rng(3);
  EXPECT_EQ(random_swap("Hello world", 0.5, rng), "World hello");
}

TEST(TextAugment, InsertPunctuationAddsUpToThirtyPercent) {
  const std::set<std::string> marks = {".", ",", "!", "?", ";", ":"};
  std::map<size_t, int> counts;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    std::mt19937_64 rng(seed);
    const auto out = split_spaces(insert_punctuation(kPlain, kInsertPunctuationStrength, rng));
    size_t added = 0;
    for (const auto& w : out) added += marks.count(w);
    ASSERT_EQ(out.size(), 40 + added);
    ++counts[added];
  }
  // randint(1, int(0.3 * 40)) = 1..12, uniformly.
  EXPECT_EQ(counts.begin()->first, 1u);
  EXPECT_EQ(counts.rbegin()->first, 12u);
  for (const auto& [added, n] : counts) EXPECT_NEAR(n, 2000 / 12, 60) << added;
}

TEST(TextAugment, SynonymReplaceChangesAugPShareOfWords) {
  REQUIRE_WORDNET(wn);
  const std::string text =
      "car house dog happy big quick road tree river city money music story power water light fire stone "
      "friend school";  // 20 distinct words, all with WordNet synonyms
  const auto original = split_spaces(text);
  double total = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    std::mt19937_64 rng(seed);
    const std::string out = synonym_replace(text, 0.2, rng, *wn);
    const auto words = split_spaces(out);
    size_t missing = 0;
    for (const auto& w : original) missing += !has(words, w);
    EXPECT_GE(missing, 1u) << out;
    EXPECT_LE(missing, 4u) << out;  // int(0.2 * 20)
    total += static_cast<double>(missing);
  }
  EXPECT_GT(total / 100, 3.0);
  std::mt19937_64 rng(5);
  const std::string capital = synonym_replace("Car", 1.0, rng, *wn);
  EXPECT_TRUE(capital[0] >= 'A' && capital[0] <= 'Z') << capital;
  EXPECT_EQ(synonym_replace("the the the", 1.0, rng, *wn), "the the the");  // determiners skipped
}

TEST(TextAugment, NlpaugTokenizationReattachesPunctuation) {
  std::mt19937_64 rng(0);
  const std::string out = random_delete("Alpha bravo, charlie delta echo. Foxtrot golf hotel india juliet!", 0.1, rng);
  EXPECT_EQ(out.find(" ,"), std::string::npos) << out;
  EXPECT_EQ(out.find(" ."), std::string::npos) << out;
  EXPECT_EQ(out.back(), '!');
}

TEST(TextAugment, OddInputsNeverCrash) {
  REQUIRE_WORDNET(wn);
  const std::vector<std::string> inputs = {"",           " ",           "word",   "...",   "!!! ???",
                                           "中文 文本 测试", "😀 🎉 👍 ❤️", "héllo wörld ñ", "a  b   c", "\t\n",
                                           "don't stop-believing (ok) [x] {y} <z> 50% i",   "\xff\xfe bad utf8"};
  for (const auto& text : inputs) {
    for (int op = 0; op < kNumTextAugmentOps; ++op) {
      for (double strength : {0.0, 0.5, 1.0}) {
        std::mt19937_64 rng(7);
        const std::string out = apply_text_augment_op(static_cast<TextAugmentOp>(op), text, strength, rng, wn.get());
        if (text.find('\xff') == std::string::npos) {
          for (const auto& c : decode_utf8_chars(out)) EXPECT_TRUE(c.valid) << text << " -> " << out;
        }
      }
    }
    std::mt19937_64 rng(9);
    EXPECT_NO_THROW(augment_text(text, {1.0, 0}, rng, wn.get()));
  }
}

TEST(TextAugment, SameSeedSameOutput) {
  REQUIRE_WORDNET(wn);
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    EXPECT_EQ(augment_text(kPlain, {0.3, 10}, a, wn.get()), augment_text(kPlain, {0.3, 10}, b, wn.get()));
  }
}

TEST(TextAugment, OpsAreChosenUniformly) {
  REQUIRE_WORDNET(wn);
  std::map<TextAugmentOp, int> counts;
  std::mt19937_64 rng(11);
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    TextAugmentOp op;
    const std::string out = augment_text(kPlain, {0.1, 10}, rng, wn.get(), &op);
    ++counts[op];
    // Synonyms may be missing for every picked word; the other ops always change it.
    if (op == TextAugmentOp::kIdentity) {
      EXPECT_EQ(out, kPlain);
    } else if (op != TextAugmentOp::kSynonymReplace) {
      EXPECT_NE(out, kPlain) << text_augment_op_name(op);
    }
  }
  ASSERT_EQ(counts.size(), 5u);
  for (const auto& [op, c] : counts) EXPECT_NEAR(c, n / 5, 150) << text_augment_op_name(op);
}

// ---------------------------------------------------------------- normalize_text

TEST(NormalizeText, AutoMMExamples) {
  EXPECT_EQ(repair_text_encoding("cafÃ©"), "café");
  EXPECT_EQ(normalize_text("cafÃ©"), "cafe");
  EXPECT_EQ(normalize_text("café"), "cafe");
  EXPECT_EQ(normalize_text("Ã¤Ã¶Ã¼"), "aou");
  // The Kaggle example in AutoMM's docs: C1 controls read as Windows-1252.
  EXPECT_EQ(normalize_text("expressive\u0097for video. \u0093Most\u0094 you\u0092re"),
            "expressive--for video. \"Most\" you're");
  EXPECT_EQ(normalize_text("down\u00a0 60"), "down  60");
  // Characters from U+0100 up leave raw_unicode_escape as escape text.
  EXPECT_EQ(normalize_text("€ 中 😀"), "\\u20ac \\u4e2d \\U0001f600");
  EXPECT_EQ(repair_text_encoding("ä¸\u00adæ\u0096\u0087"), "中文");  // UTF-8 read as Latin-1
  EXPECT_EQ(normalize_text("plain ascii \\ text"), "plain ascii \\ text");
  EXPECT_EQ(normalize_text(""), "");
}

// Runs `script` under /usr/bin/python3 on hex-encoded UTF-8 lines; returns its
// output lines decoded. A script that fails is a test failure (with its log).
std::vector<std::string> run_python(const std::string& script, const std::vector<std::string>& inputs) {
  testing::TempDir dir;
  {
    std::ofstream in(dir.file("in.txt"));
    for (const auto& s : inputs) {
      for (unsigned char c : s) in << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
      in << '\n';
    }
    std::ofstream(dir.file("ref.py")) << script;
  }
  const std::string error = testing::run_reference_command(
      "/usr/bin/python3 " + dir.file("ref.py") + " < " + dir.file("in.txt") + " > " + dir.file("out.txt"),
      dir.file("log.txt"));
  if (!error.empty()) {
    ADD_FAILURE() << error;
    return {};
  }
  std::vector<std::string> out;
  std::ifstream result(dir.file("out.txt"));
  for (std::string line; std::getline(result, line);) {
    std::string s;
    for (size_t i = 0; i + 1 < line.size(); i += 2) s.push_back(static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16)));
    out.push_back(s);
  }
  return out;
}

// AutoMM's normalize_txt written from its source; prints the codec chain, then
// unidecode of it (or "-" without the module), per line.
const char* kPythonReference = R"(
import codecs, sys
codecs.register_error("to_utf8", lambda e: (e.object[e.start:e.end].encode("utf-8"), e.end))
codecs.register_error("from_cp1252", lambda e: (e.object[e.start:e.end].decode("cp1252"), e.end))
try:
    from unidecode import unidecode
except ImportError:
    unidecode = None
for line in sys.stdin:
    text = bytes.fromhex(line.strip()).decode("utf-8")
    repaired = (text.encode("raw_unicode_escape").decode("utf-8", "from_cp1252")
                .encode("cp1252", "to_utf8").decode("utf-8", "from_cp1252"))
    print(repaired.encode("utf-8").hex())
    print(unidecode(repaired).encode("utf-8").hex() if unidecode else "2d")
)";

TEST(NormalizeText, MatchesPythonOnRandomMojibake) {
  // Pieces that make mojibake likely, plus plain text, Latin-1, C1 controls
  // (minus the five Windows-1252 leaves undefined, where Python raises) and
  // characters beyond Latin-1.
  std::vector<std::string> pieces = {"a", "Z", " ", "\\", "é", "Ã", "©", "Â", "â", "€", "™", "’", "中", "😀",
                                     "\u00a0", "\u0080", "\u0099", "\u0093", "\u009f", "\u00ad", "ð", "Ÿ", "\u00bf"};
  for (char32_t cp = 0x80; cp < 0x100; ++cp) {
    if (cp == 0x81 || cp == 0x8D || cp == 0x8F || cp == 0x90 || cp == 0x9D) continue;
    std::string s;
    append_utf8(cp, &s);
    pieces.push_back(s);
  }
  for (const char* word : {"café", "naïve", "déjà", "’", "—", "“", "€", "ü"}) {  // UTF-8 bytes read as Latin-1
    std::string mojibake;
    for (unsigned char b : std::string(word)) append_utf8(b, &mojibake);
    pieces.push_back(mojibake);
  }
  testing::XorShiftRng rng(42);
  std::vector<std::string> inputs = {"cafÃ©", "\u0097", "Ã¤Ã¶Ã¼ ÃŸ", "â€™"};
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    for (size_t k = 1 + rng.below(8); k > 0; --k) s += pieces[rng.below(pieces.size())];
    inputs.push_back(s);
  }
  const std::string missing = testing::python_reference_missing("sys", "python3", "the normalize_text reference");
  if (!missing.empty()) GTEST_SKIP() << missing;
  const auto reference = run_python(kPythonReference, inputs);
  ASSERT_EQ(reference.size(), 2 * inputs.size());
  const bool have_unidecode = reference[1] != "-";
  size_t compared = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(repair_text_encoding(inputs[i]), reference[2 * i]) << "input " << inputs[i];
    const std::string ours = normalize_text(inputs[i]);
    const bool ascii = std::all_of(ours.begin(), ours.end(), [](char c) { return (c & 0x80) == 0; });
    if (have_unidecode && ascii) {  // outside our table we keep characters unidecode would spell out
      ASSERT_EQ(ours, reference[2 * i + 1]) << "input " << inputs[i];
      ++compared;
    }
  }
  if (!have_unidecode) std::printf("python3-unidecode missing: transliteration not compared\n");
  // Random Latin-1 strings often hide UTF-8 of arbitrary characters, which
  // unidecode spells out and normalize_text keeps; still most are compared.
  else EXPECT_GT(compared, inputs.size() / 2);
}

}  // namespace
}  // namespace automm

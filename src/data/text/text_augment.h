// AutoMM's text augmentation (model.hf_text.text_trivial_aug_maxscale,
// text_aug_detect_length) and text normalization (data.text.normalize_text).
//
// Augmentation follows AutoMM's TrivialAugment for text, which calls nlpaug:
// one op drawn uniformly from {identity, synonym replacement, random delete,
// random swap, insert punctuation} with a strength drawn from U(0, max_scale).
// The word ops tokenize like nlpaug (runs of word characters; every other
// non-space character is a token of its own) and join the tokens back with
// nlpaug's detokenizer, so "it's" comes back as "it ' s" as it does in AutoMM.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace automm {

// WordNet 3.0 read from the files of Debian's wordnet-base package. The index
// files are sorted, so lookups binary-search them in memory; nothing is parsed
// up front beyond the small exception lists.
class WordNet {
 public:
  // Reads `dir` (default: $WNSEARCHDIR, else /usr/share/wordnet). Loads of the
  // same folder share one instance. Throws std::runtime_error when the folder
  // lacks the database.
  static std::shared_ptr<const WordNet> load(const std::string& dir = "");

  // Lemma names of every synset of `word` in all parts of speech (noun, verb,
  // adjective, adverb, in WordNet's sense order), found through morphy so that
  // "cars" reaches car's synsets. Duplicates are kept (nlpaug samples from this
  // list); lemmas equal to `word` ignoring ASCII case are left out. Multiword
  // lemmas keep WordNet's underscores ("motor_vehicle").
  std::vector<std::string> synonyms(const std::string& word) const;

  // NLTK's morphy: the base forms of `word` (lowercase, underscores for
  // spaces) that WordNet lists for `pos` ('n', 'v', 'a' or 'r'), from the
  // *.exc exception lists or else the standard suffix rules.
  std::vector<std::string> base_forms(const std::string& word, char pos) const;

  struct PosFiles;  // one part of speech's index, data and exceptions
  explicit WordNet(std::vector<PosFiles> files);
  ~WordNet();

 private:
  std::vector<PosFiles> files_;  // noun, verb, adj, adv
};

struct TextAugmentOptions {
  double max_scale = 0.1;     // model.hf_text.text_trivial_aug_maxscale; <= 0 turns augmentation off
  int64_t detect_length = 10;  // model.hf_text.text_aug_detect_length
};

enum class TextAugmentOp { kIdentity, kSynonymReplace, kRandomDelete, kRandomSwap, kInsertPunctuation };
constexpr int kNumTextAugmentOps = 5;
const char* text_augment_op_name(TextAugmentOp op);

// AutoMM's word count for text_aug_detect_length: the pieces of text.split(" "),
// so runs of spaces count empty pieces, as in Python.
int64_t count_space_separated_words(const std::string& text);

// Training-time augmentation of one text. Returns `text` unchanged when
// max_scale <= 0 or it has fewer than detect_length words; otherwise draws an op
// and a strength and applies them. `chosen`, when given, receives the op.
// Throws std::invalid_argument when augmentation applies and `wordnet` is null.
std::string augment_text(const std::string& text, const TextAugmentOptions& options, std::mt19937_64& rng,
                         const WordNet* wordnet, TextAugmentOp* chosen = nullptr);

// One op with a given strength (nlpaug's aug_p: the share of tokens to change,
// at least one). Like nlpaug, an op whose result equals the input is retried up
// to three more times. `wordnet` may be null except for kSynonymReplace.
std::string apply_text_augment_op(TextAugmentOp op, const std::string& text, double strength, std::mt19937_64& rng,
                                  const WordNet* wordnet);

// The ops themselves, one attempt each (no retry). Punctuation tokens are never
// picked. synonym_replace also skips determiners (nlpaug skips words its POS
// tagger marks DT; there is no tagger here, so synonyms come from all parts of
// speech, as nlpaug does for tags it cannot map). Replacements are lowercased
// with '_' and '-' as spaces, capitalized when the word was.
std::string synonym_replace(const std::string& text, double strength, std::mt19937_64& rng, const WordNet& wordnet);
std::string random_delete(const std::string& text, double strength, std::mt19937_64& rng);
std::string random_swap(const std::string& text, double strength, std::mt19937_64& rng);
// AutoMM's InsertPunctuation: splits on " ", puts one of . , ! ? ; : before
// 1..int(strength * words) distinct random words. AutoMM always uses strength
// 0.3 here (kInsertPunctuationStrength) whatever the drawn scale.
constexpr double kInsertPunctuationStrength = 0.3;
std::string insert_punctuation(const std::string& text, double strength, std::mt19937_64& rng);

// data.text.normalize_text: AutoMM's normalize_txt, which repairs text that was
// decoded with the wrong code page and then transliterates it to ASCII.
// In Python it is
//   text.encode("raw_unicode_escape")   # chars < U+0100 as one byte; others as the ASCII text \uXXXX
//       .decode("utf-8", bytes that are not UTF-8 -> their Windows-1252 character)
//       .encode("cp1252", chars outside Windows-1252 -> their UTF-8 bytes)
//       .decode("utf-8", bytes that are not UTF-8 -> their Windows-1252 character)
// followed by unidecode. So "cafÃ©" -> "café" -> "cafe", "\x97" -> "—" -> "--",
// and, as in AutoMM, a character from U+0100 up in the input comes out as the
// literal escape text: "€" -> "\u20ac", "中" -> "\u4e2d".
// repair_text_encoding is the round trip alone (UTF-8 in and out). Where Python
// raises (a stray U+0081, U+008D, U+008F, U+0090 or U+009D, undefined in
// Windows-1252) the character is kept.
std::string repair_text_encoding(const std::string& text);
// The transliteration covers what the round trip can produce from typical
// input: U+0080..U+00FF, the Windows-1252 characters and General Punctuation
// up to U+203A, with unidecode's ASCII; other characters (reachable only
// through UTF-8 hidden in Latin-1 text) are kept as they are.
std::string normalize_text(const std::string& text);

}  // namespace automm

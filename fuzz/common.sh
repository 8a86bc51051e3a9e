# shellcheck shell=bash
# Shared by the scripts in fuzz/. Source it, do not run it.

# Prints the path of each executable named in cargo's JSON messages on
# standard input (from --message-format json-render-diagnostics).
cargo_executables() {
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
}

# Prints the largest input libFuzzer may generate for target $1. A
# checkpoint or training state file is about 0.4 or 0.9 MB. The other
# targets' inputs stay small.
fuzz_max_len() {
    case "$1" in
        checkpoint) echo 1048576 ;;
        predict_body | v2_infer) echo 65536 ;;
        *) echo 16384 ;;
    esac
}

# Fills the array fuzz_corpora with the corpus folders of target $1 in
# folder $2 (the fuzz folder): the seed corpus, written by make_corpus.sh
# when it does not exist yet, then the inputs that once found a bug, if
# any. libFuzzer writes new inputs only into the first folder.
fuzz_collect_corpora() {
    local corpus="$2/corpus/$1"
    if [ ! -d "$corpus" ]; then
        "$2/make_corpus.sh" "$2/corpus"
        mkdir -p "$corpus"
    fi
    fuzz_corpora=("$corpus")
    if [ -d "$2/regressions/$1" ]; then
        fuzz_corpora+=("$2/regressions/$1")
    fi
}

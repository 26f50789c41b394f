#!/usr/bin/env bash
# Issue 10 item 13: with a software token the token files plus the user PIN
# are the key. init-token.sh keeps the SO PIN out of the token directory
# (which the signer's user is given), and every file that holds the key or
# a PIN is 0600 in 0700 directories.
. "$(dirname "$0")/lib.sh"
need pkcs11-tool

make_token
H=$T/hsm
assert_eq "$(find "$H" -name so.pin | wc -l)" 0 "no SO PIN inside the token directory"
assert_eq "$(stat -c %a "$H.so.pin")" 600 "SO PIN beside it, 0600"
[ "$(wc -c <"$H.so.pin")" -eq 24 ] || fail "SO PIN is not 24 characters"
assert_eq "$(stat -c %a "$H/user.pin")" 600 "user PIN 0600"
assert_eq "$(stat -c %a "$H" "$H/tokens")" $'700\n700' "token directories 0700"
loose=$(find "$H/tokens" -type f -perm /077 | wc -l)
assert_eq "$loose" 0 "token object files readable by group or others"
assert_eq "$(find "$H/tokens" -type d -perm /077 | wc -l)" 0 "token subdirectories open to group or others"
ok "init-token.sh: so.pin outside DIR ($H.so.pin), PINs 0600, token files 0600 in 0700 directories"

# The SO PIN there is the token's: it resets the user PIN (what it is for).
expect_rc 0 p11 --login --login-type so --so-pin "$(cat "$H.so.pin")" --init-pin --new-pin "$(cat "$H/user.pin")"
ok "the SO PIN outside DIR is the token's SO PIN"

# A token made by the old script (so.pin inside DIR) is fixed on the next run.
mv "$H.so.pin" "$H/so.pin"
expect_rc 0 env SFTCA_SIGNER_BIN="$SIGNER" SOFTHSM_MODULE="$MODULE" "$SRC/hsm-config/init-token.sh" "$H" sftca
assert_contains "$OUT" "moved the SO PIN out of the token directory to $H.so.pin" "the move is said"
[ ! -e "$H/so.pin" ] && [ -s "$H.so.pin" ] || fail "so.pin not moved out"
expect_rc 1 env SFTCA_SIGNER_BIN="$SIGNER" SOFTHSM_MODULE="$MODULE" "$SRC/hsm-config/init-token.sh" "$H" sftca "$H/sub/so.pin"
assert_contains "$OUT" "must be outside the token directory" "an SO PIN file inside DIR refused"
ok "an old token's so.pin is moved out of DIR; an SO PIN path inside DIR is refused"

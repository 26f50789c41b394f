/* text_escape: nothing that acts on a terminal survives, printable UTF-8
 * does, and a short buffer never splits an escape or a UTF-8 sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "textclean.h"

static void escapes_controls(void **state)
{
	char out[256];

	(void)state;
	/* OSC title, OSC 52 with ST, CSI, C1 CSI as a raw byte and as UTF-8, BEL, DEL. */
	text_escape("a\x1b]0;T\x07\x1b]52;c;x\x1b\\\x1b[2J\x9b" "31m\xc2\x9b\x7f z", out, sizeof(out));
	assert_string_equal(out, "a\\x1b]0;T\\x07\\x1b]52;c;x\\x1b\\\\\\x1b[2J\\x9b31m\\x9b\\x7f z");
	text_escape("tab\tnl\ncr\r", out, sizeof(out));
	assert_string_equal(out, "tab\\x09nl\\x0acr\\x0d");
}

static void keeps_text(void **state)
{
	char out[64];

	(void)state;
	text_escape("Grüße, 日本 – ok", out, sizeof(out));
	assert_string_equal(out, "Grüße, 日本 – ok");
}

static void truncates_whole(void **state)
{
	char out[8];

	(void)state;
	text_escape("abcd\x1b", out, sizeof(out)); /* "abcd" + 4 bytes would need 9 */
	assert_string_equal(out, "abcd");
	text_escape("abcdef\xc3\xbc", out, sizeof(out)); /* the two bytes of ü do not fit after 6 */
	assert_string_equal(out, "abcdef");
	text_escape("x", out, 1);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(escapes_controls),
		cmocka_unit_test(keeps_text),
		cmocka_unit_test(truncates_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

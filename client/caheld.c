#include "caheld.h"

#include "cainfo.h"
#include "errors.h"
#include "log.h"
#include "x509util.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* GetCA of one generation (0 = active): its certificate into *cert, and
 * with info the CA's description. */
static int get_gen(struct signer_conn *c, const char *ca_id, unsigned gen, X509 **cert,
		   Sftca__V1__GetCAResponse **keep)
{
	Sftca__V1__GetCARequest q = SFTCA__V1__GET_CAREQUEST__INIT;
	Sftca__V1__GetCAResponse *r = NULL;
	STACK_OF(X509) *sk = NULL;
	int rc;

	q.ca_id = (char *)ca_id;
	q.generation = gen;
	if (client_call(c, "/sftca.v1.Signer/GetCA", &q.base, &sftca__v1__get_caresponse__descriptor,
			(ProtobufCMessage **)&r) != 0)
		return SFTCA_ERR_RPC;
	rc = pem_parse_certs(r->cert_pem, strlen(r->cert_pem), &sk);
	if (rc == 0 && sk_X509_num(sk) > 0)
		*cert = sk_X509_shift(sk);
	else
		rc = SFTCA_ERR_INVALID;
	sk_X509_pop_free(sk, X509_free);
	if (keep && rc == 0)
		*keep = r;
	else
		protobuf_c_message_free_unpacked(&r->base, NULL);
	if (rc != 0)
		log_error("the signer's certificate of CA %s generation %u does not parse", ca_id, gen);
	return rc;
}

/* The ids of the signer's other CAs (those the caller may see). */
static int get_others(struct signer_conn *c, const char *ca_id, struct ca_held *h)
{
	Sftca__V1__GetStatusRequest q = SFTCA__V1__GET_STATUS_REQUEST__INIT;
	Sftca__V1__GetStatusResponse *r = NULL;

	if (client_call(c, "/sftca.v1.Signer/GetStatus", &q.base,
			&sftca__v1__get_status_response__descriptor, (ProtobufCMessage **)&r) != 0)
		return SFTCA_ERR_RPC;
	if ((h->others = calloc(r->n_cas + 1, sizeof(*h->others))) == NULL) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		log_error("out of memory for %zu CA ids", r->n_cas);
		return SFTCA_ERR_NOMEM;
	}
	for (size_t i = 0; i < r->n_cas; i++)
		if (strcmp(r->cas[i]->ca_id, ca_id) != 0)
			snprintf(h->others[h->nothers++], sizeof(*h->others), "%s", r->cas[i]->ca_id);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

int ca_held_fetch(struct signer_conn *c, const char *ca_id, struct ca_held *h)
{
	Sftca__V1__GetCAResponse *info = NULL;
	X509 *active = NULL;
	int rc;

	memset(h, 0, sizeof(*h));
	if ((h->all = sk_X509_new_null()) == NULL || (h->bundle = sk_X509_new_null()) == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rc = get_gen(c, ca_id, 0, &active, &info)) != 0 || (rc = get_others(c, ca_id, h)) != 0) {
		if (info)
			protobuf_c_message_free_unpacked(&info->base, NULL);
		X509_free(active);
		return rc;
	}
	X509_free(active); /* listed again among the generations below */
	snprintf(h->custody, sizeof(h->custody), "%s",
		 info->ca ? custody_wire_name(info->ca->custody) : "unknown");
	for (size_t i = 0; rc == 0 && info->ca && i < info->ca->n_generations; i++) {
		const Sftca__V1__Generation *g = info->ca->generations[i];
		X509 *x = NULL;
		if ((rc = get_gen(c, ca_id, g->generation, &x, NULL)) != 0)
			break;
		if (!sk_X509_push(h->all, x)) {
			X509_free(x);
			rc = SFTCA_ERR_NOMEM;
			break;
		}
		if (g->state == SFTCA__V1__GENERATION_STATE__GENERATION_RETIRED)
			continue;
		if (!X509_up_ref(x))
			rc = SFTCA_ERR_NOMEM;
		else if (!sk_X509_push(h->bundle, x)) {
			X509_free(x);
			rc = SFTCA_ERR_NOMEM;
		}
	}
	protobuf_c_message_free_unpacked(&info->base, NULL);
	return rc;
}

void ca_held_free(struct ca_held *h)
{
	sk_X509_pop_free(h->all, X509_free);
	sk_X509_pop_free(h->bundle, X509_free);
	h->all = h->bundle = NULL;
	free(h->others);
	h->others = NULL;
	h->nothers = 0;
}

int ca_held_signed(const struct ca_held *h, X509 *leaf)
{
	for (int i = 0; i < sk_X509_num(h->bundle); i++)
		if (X509_verify(leaf, X509_get0_pubkey(sk_X509_value(h->bundle, i))) == 1) {
			ERR_clear_error();
			return 1;
		}
	ERR_clear_error();
	return 0;
}

int ca_held_knows(const struct ca_held *h, X509 *ca)
{
	for (int i = 0; i < sk_X509_num(h->all); i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(h->all, i)), X509_get0_pubkey(ca)) == 1)
			return 1;
	ERR_clear_error();
	return 0;
}

int ca_held_foreign(const struct ca_held *h, const char *ca_id, const char *root,
		    const struct layout_target *t, struct foreign_leaf *fl)
{
	X509 *x = NULL;

	if (layout_file(t->dir, LAYOUT_CERT, fl->path, sizeof(fl->path)) != 0 ||
	    pem_load_cert(fl->path, &x) != 0) {
		ERR_clear_error();
		return 0;
	}
	if (ca_held_signed(h, x)) {
		X509_free(x);
		return 0;
	}
	x509_name_text(X509_get_subject_name(x), fl->subject, sizeof(fl->subject));
	x509_name_text(X509_get_issuer_name(x), fl->issuer, sizeof(fl->issuer));
	/* --force: a bundle the vendor regenerated stops issue without it. */
	snprintf(fl->fix, sizeof(fl->fix), "sftca issue --ca %s --root %s %s%s --force", ca_id,
		 root, t->self ? "--self" : "--peer ", t->self ? "" : t->uuid);
	X509_free(x);
	return 1;
}

void ca_held_print_foreign(FILE *f, const struct foreign_leaf *fl, const char *ca_id,
			   const char *note)
{
	fprintf(f,
		"foreign leaf: %s (subject %s, issuer %s): no generation of CA %s that the signer "
		"holds signed it (a registration the FMC signed with another key, or the vendor's "
		"script)%s%s; fix: %s\n",
		fl->path, fl->subject, fl->issuer, ca_id, note ? "; " : "", note ? note : "", fl->fix);
}

json_t *ca_held_foreign_json(const struct foreign_leaf *fl)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "path", fl->path, "subject", fl->subject, "issuer",
			 fl->issuer, "fix", fl->fix);
}

int ca_held_unknown_bundle(const struct ca_held *h, const char *root, struct sftca_msg *why)
{
	char dir[4200], path[4300];
	STACK_OF(X509) *sk = NULL;
	struct stat st;
	int unknown = 0;

	if (layout_ca_root(root, dir, sizeof(dir)) != 0 ||
	    layout_file(dir, LAYOUT_BUNDLE, path, sizeof(path)) != 0 ||
	    (stat(path, &st) != 0 && errno == ENOENT))
		return 0;
	/* A bundle that does not parse holds nothing the signer knows either. */
	if (pem_load_certs(path, &sk) != 0 || sk_X509_num(sk) == 0) {
		ERR_clear_error();
		msg_set(why, "%s holds no certificate that parses", path);
		sk_X509_pop_free(sk, X509_free);
		return 1;
	}
	for (int i = 0; i < sk_X509_num(sk); i++) {
		X509 *x = sk_X509_value(sk, i);
		char subject[256], serial[80], fp[65], kfp[65];

		if (ca_held_knows(h, x))
			continue;
		if (unknown++ > 0)
			continue;
		x509_name_text(X509_get_subject_name(x), subject, sizeof(subject));
		if (x509_serial_hex(x, serial, sizeof(serial)) != 0)
			snprintf(serial, sizeof(serial), "?");
		if (x509_sha256_hex(x, fp) != 0)
			snprintf(fp, sizeof(fp), "?");
		if (pkey_spki_sha256_hex(X509_get0_pubkey(x), kfp) != 0)
			snprintf(kfp, sizeof(kfp), "?");
		msg_set(why, "%s holds a CA the signer does not know: subject %s, serial %s, SHA-256 %s, "
			     "key SHA-256 %s",
			path, subject, serial, fp, kfp);
	}
	if (unknown > 1)
		msg_append(why, " ", "(and %d more)", unknown - 1);
	sk_X509_pop_free(sk, X509_free);
	return unknown;
}

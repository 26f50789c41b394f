/* The CA generations the signer holds for one CA, as the client sees them:
 * to tell a leaf sftca's keys signed from a foreign one (a registration the
 * FMC signed with another key, the vendor's script), and a trust bundle the
 * signer knows from one the vendor's tool regenerated (issue 13). */
#ifndef SFTCA_CAHELD_H
#define SFTCA_CAHELD_H

#include "client.h"
#include "layout.h"

#include <jansson.h>
#include <openssl/x509.h>
#include <stdio.h>

struct ca_held {
	STACK_OF(X509) *all;    /* every generation's certificate, retired ones too */
	STACK_OF(X509) *bundle; /* active and retiring: the keys a device trusts */
	char custody[16];       /* "shared", "exclusive", "unknown" */
	char (*others)[40];     /* the other CAs the signer lets the caller see: a peer
				 * directory named for one is an FMC HA peer's */
	size_t nothers;
};

/* Ask the signer (GetCA per generation, GetStatus for the other CAs). 0,
 * or an error already reported. */
int ca_held_fetch(struct signer_conn *c, const char *ca_id, struct ca_held *h)
	__attribute__((warn_unused_result));
void ca_held_free(struct ca_held *h);
/* 1 when the key of a bundle generation signed leaf. */
int ca_held_signed(const struct ca_held *h, X509 *leaf);
/* 1 when ca's public key is that of some generation, retired ones too. */
int ca_held_knows(const struct ca_held *h, X509 *ca);

/* A leaf that no bundle generation of the CA signed. */
struct foreign_leaf {
	char path[4300];
	char subject[512], issuer[512];
	char fix[4600];  /* the sftca issue command that replaces it */
};
/* 1 (fl filled) when t's leaf is foreign; 0 when it is not, or there is no
 * readable certificate (reported elsewhere). */
int ca_held_foreign(const struct ca_held *h, const char *ca_id, const char *root,
		    const struct layout_target *t, struct foreign_leaf *fl);
/* One line naming it, with note (may be NULL) and the fix. */
void ca_held_print_foreign(FILE *f, const struct foreign_leaf *fl, const char *ca_id,
			   const char *note);
json_t *ca_held_foreign_json(const struct foreign_leaf *fl);

/* The certificates of DIR/etc/sf/ca_root/cacert.pem that the signer does
 * not know, each described (subject, serial, SHA-256, key SHA-256) in why.
 * 0 when every one is known or there is no file; else their count. */
int ca_held_unknown_bundle(const struct ca_held *h, const char *root, struct sftca_msg *why);

#endif

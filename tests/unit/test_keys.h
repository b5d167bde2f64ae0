/* SPDX-License-Identifier: MIT */
/*
 * test_keys.h: a fixed RSA-2048 private key for the unit tests, made once
 * with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` and
 * used for nothing else.
 *
 * Why fixed: making an RSA key means searching for primes, which takes
 * tens of seconds under valgrind (minutes over a test file), while what the
 * tests check (a CSR signed with an RSA key, a certificate for the wrong
 * key) needs an RSA key, not a new one. EC keys are cheap and stay
 * generated per test.
 */
#ifndef HOOKD_TEST_KEYS_H
#define HOOKD_TEST_KEYS_H

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

static const char hookd_test_rsa_2048_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDB+GZAGj3moyBH\n"
    "ElfZCjAVQk4kpIIJRIC9CMkksKsi1N1vprdiRMUieqOXg3ezbebcQplNRfuIUKdv\n"
    "5GvMm/FuizXQbXweJMIFr1iW+QZn3629P8hqXmMOnL1vsJgOfK4Q7duWeWy912l5\n"
    "YFVZGerXwosrkmWdlAa7PyLuUSuwlJ7RVX5kNxRRK0JCzM7iXSmXLDvi421F18wL\n"
    "UOumPeblf0fDwJ2dijU7sG1OR5xUotgoxwYNC1eCWAIhXLw5KJBqymQ9a1xMEQi4\n"
    "peCNiGrO7W4A2Kcl1nDhWFHUNGZnzV86hKCbXYAcJOEFdqKS3q9mpNcmKd92VllP\n"
    "JnfsDpa7AgMBAAECggEAAVbHdH+Z4EYsfHbKABnLVrG20bP3yieWiF7BLA+Nwr+2\n"
    "fZvurF6Vc4jZ3tyDYzMabAz7pIuC82ZhdFpUdUUL7QPUk/asvmyXJbR60+5LNfIh\n"
    "EKDw0HF7rg3u53vYUaTENPjnXrde7hqOyDUFRnOeuHFP++MhEUCVEMwggNAJslka\n"
    "P8CRn7W5X4/vlkEKKdc1Wtia76lItkPJ+fwT1rRRkra+Jag8wy1dnmk6N4LRjmgG\n"
    "7laLfOATpQhLUZdB2e0tbwyTVQx2Jz9MsVZz9OlGr9lDnyZrrICo16oyqY7g4T9R\n"
    "a4HppbVzu2I2z26aeJf7szRIh+SszE4d0/TcT5+sFQKBgQDjMdydaAVu4n8eVkbR\n"
    "1F3iwUjU8aj3C4BnuM1Q/JRrmK96AEeWohOUJOybiaCWitJkZRSbiNB1D40etMXn\n"
    "qSUmARFeTpQkKifTQqmlb7YRzU7MjKEwp8IpT3PjRtqLgrvVpKY3pMq6jeGmoL8I\n"
    "/nDLs1TG2dfsZyjCwaZXROPjNQKBgQDakCjxVC5U7SIMXD84PLnwSnhnLxfzqI6e\n"
    "eFLWuPFTncC0VoIlGDau3nv7euMcyeBqd6pWQR652FPEMXDEd+JDhdsNLF9Jh1+z\n"
    "XJENNkvHtW3BNZURQ5jfEz46igh6c+3dviYwAa3k0SXGgkFHb5LJnDHUhtEGOlUr\n"
    "Se2JCXRgLwKBgQDUG5wNNK1F3Z2yM/hAM9VHOw6FB+yoYAuMSmMdBgKHBXBmJVaw\n"
    "kjZXK7XebDoJ8icEZb48ixmbAF7O2RSe+DJfbcXKVvBFZznxKR56/nVr31J+85gV\n"
    "dbl2md/mwyKL9wzoI6Su9GH0kzulNhPEENA7zPwL/htxcMoEMYjblsxvNQKBgQCN\n"
    "GUYlTig/EXvKqP7zSljrpNgIHSIEXkv8SEeKcYjyZ0RR6AtK8U/UIrO9zT6zhiyH\n"
    "70sbNh0k82BYp2Zan96FovOglIXLjUaeH2NROT1A54K8md/rbk1RrjWdSyFgFFl6\n"
    "rtguY9ckglU1yz9jY8dKurh8sLBeqefz810S+/SSZwKBgDcGEM1xTc8ol7eiDf7g\n"
    "IkGC0j6MpmODnTyS2ap/kln2ILOCODRvYP4ghng7ZzOAIKtNgB85zIgQYzTcpnpk\n"
    "TA/B7LQl3LqUeWlYt0BFMckwhdHKhEBbceGTzkqvZwxttDqEamkmOF1fkj+IKia0\n"
    "bTrdr1JeULg/y5Yx0h1ZSKN1\n"
    "-----END PRIVATE KEY-----\n";

/* A new EVP_PKEY holding the fixed RSA key (the caller frees it), or NULL. */
static inline EVP_PKEY *hookd_test_rsa_key(void)
{
    BIO *b = BIO_new_mem_buf(hookd_test_rsa_2048_pem, -1);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

#endif /* HOOKD_TEST_KEYS_H */

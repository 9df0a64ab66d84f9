// Package email is agentd's mail transport: DIDComm v2 over SMTP, in and out.
//
// Inbound, Server is an SMTP server (github.com/emersion/go-smtp) for the
// domains and addresses it is configured with, and for nothing else: it is not
// a relay. It takes the DIDComm messages of a mail from MIME parts of the
// three DIDComm media types (any file name), from application/octet-stream
// parts named *.dcem, *.dcsm or *.dcpm, and from a body that is itself a
// DIDComm JWE (Extract). Bad input gets a 5xx reply with the reason and
// changes nothing: a recipient outside the configured domains 550, a mail over
// the size limit 552 (the SIZE extension advertises it), a mail without
// DIDComm content or with a message the router refuses 554.
//
// Durable acknowledgement: a mail is answered 250 only after every DIDComm
// message in it passed the router's checks (Receiver.Check: envelope,
// decryption, addressing, expiry; nothing recorded) and the mail was
// committed to the spool (an agent.Records, durable on return). The router
// processes spooled mails in the background (Server.Process) and each is
// removed once processed; what is left in the spool when the daemon stops is
// processed after the next start. Processing a mail a second time after a
// crash is harmless: the router's replay cache drops the second copy.
//
// Outbound, Sender implements agent.Transport for mailto: endpoints: it
// composes a mail with a short explanation and the packed message as an
// attachment (Compose; application/didcomm-encrypted+json, message.dcem) and
// delivers it through a smarthost (STARTTLS, AUTH PLAIN) or to the recipient
// domain's MX hosts. A 5xx answer is a bounce, dead-lettered by the outbox at
// once; a 4xx answer or a network failure is retried with backoff.
package email

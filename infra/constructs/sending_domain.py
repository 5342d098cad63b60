"""A sending domain made by the stack: SES domain identity, Easy DKIM, custom MAIL FROM, DMARC.

With a Route 53 hosted zone (``hosted_zone_id`` + ``hosted_zone_name``, no lookup at synth) the construct
writes every DNS record into it; without one it names each record to publish, for the stack's outputs.

Why not ``ses.Identity.public_hosted_zone(zone)``: it makes the identity the zone's apex, so a sending
domain below the zone (``mail.example.com`` in ``example.com``) could not be served.  Here the identity
is always ``Identity.domain(sending_domain)`` and the records are ``CfnRecordSet``s under full names:
Route 53 takes a name as fully qualified (the trailing dot is optional there), while CDK's L2 records
append the zone's name to any name without the dot, which has produced ``mail.example.com.example.com``
in public reports (and would for the DKIM names, CloudFormation attributes without the dot).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Fn, Stack, Token
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_ses as ses
from constructs import Construct

from infra import constants
from infra.config import StepmailConfig, dmarc_name

#: SES's MAIL FROM records (SES Developer Guide, "Using a custom MAIL FROM domain"): bounces come back
#: through SES's feedback endpoint of the region, and SPF authorizes SES to send for the domain.
MAIL_FROM_MX_PRIORITY = 10
MAIL_FROM_SPF = "v=spf1 include:amazonses.com ~all"
#: The TTL CDK gives the DKIM records it writes itself (seconds).
RECORD_TTL_SECONDS = 1800


def mail_from_mx_host(region: str) -> str:
    """SES's feedback endpoint for the MAIL FROM domain's MX record in ``region``."""
    return f"feedback-smtp.{region}.amazonses.com"


@dataclass(frozen=True)
class DnsRecord:
    """One record to publish, as a zone file writes it: ``name TYPE rdata``.

    ``name`` is a full name (for DKIM a CloudFormation attribute: a full name without the trailing dot);
    ``rdata`` is what Route 53 takes as the record's value (TXT values in double quotes).
    """

    key: str  # the record's construct id and output suffix: Dkim1, MailFromMx, ...
    name: str
    type: str
    rdata: str
    description: str

    def as_text(self) -> str:
        return Fn.join(" ", [self.name, self.type, self.rdata])


class SendingDomain(Construct):
    """The SES domain identity of ``config.sending_domain`` and the DNS records that make it work.

    Raises
    ------
    ValueError
        If the configuration has no ``sending_domain``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StepmailConfig) -> None:
        super().__init__(scope, construct_id)
        if config.sending_domain is None:
            raise ValueError("SendingDomain needs config.sending_domain")
        self.domain = config.sending_domain
        self.identity = ses.EmailIdentity(
            self,
            constants.SENDING_DOMAIN_IDENTITY_ID,
            identity=ses.Identity.domain(self.domain),
            dkim_identity=ses.DkimIdentity.easy_dkim(ses.EasyDkimSigningKeyLength.RSA_2048_BIT),
            dkim_signing=True,
            mail_from_domain=config.mail_from_domain,
            # Until the MX record resolves, SES sends with its own MAIL FROM (amazonses.com) instead of
            # rejecting the email: DKIM still aligns for DMARC, and nothing is dead-lettered for DNS lag.
            mail_from_behavior_on_mx_failure=ses.MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE,
        )
        self.records = self._records(config, Stack.of(self).region)
        self.zone: route53.IHostedZone | None = None
        if config.hosted_zone_id and config.hosted_zone_name:
            self.zone = route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=config.hosted_zone_id, zone_name=config.hosted_zone_name
            )
            self._write_records(self.zone)

    def _records(self, config: StepmailConfig, region: str) -> list[DnsRecord]:
        dkim = [
            DnsRecord(
                f"Dkim{number}",
                token.name,
                "CNAME",
                token.value,
                f"Easy DKIM record {number} of {self.domain}",
            )
            for number, token in enumerate(self.identity.dkim_records, start=1)
        ]
        mail_from = config.mail_from_domain
        records = [
            *dkim,
            DnsRecord(
                "MailFromMx",
                mail_from,
                "MX",
                f"{MAIL_FROM_MX_PRIORITY} {mail_from_mx_host(region)}",
                f"The MAIL FROM domain of {self.domain}: where bounces come back",
            ),
            DnsRecord(
                "MailFromSpf",
                mail_from,
                "TXT",
                f'"{MAIL_FROM_SPF}"',
                f"SPF of the MAIL FROM domain of {self.domain}",
            ),
        ]
        if config.dmarc_record is not None:
            records.append(
                DnsRecord(
                    "Dmarc",
                    dmarc_name(self.domain),
                    "TXT",
                    f'"{config.dmarc_record}"',
                    f"DMARC policy of {self.domain}",
                )
            )
        return records

    def _write_records(self, zone: route53.IHostedZone) -> None:
        # CfnRecordSet takes the name verbatim: an L2 record (CnameRecord, MxRecord) appends the zone's
        # name to a name without the trailing dot, and the DKIM names are attributes without one.
        for record in self.records:
            route53.CfnRecordSet(
                self,
                record.key,
                hosted_zone_id=zone.hosted_zone_id,
                name=absolute(record.name),
                type=record.type,
                resource_records=[record.rdata],
                ttl=str(RECORD_TTL_SECONDS),
            )


def absolute(name: str) -> str:
    """A record name with the root's trailing dot (an attribute token is already a full name)."""
    if Token.is_unresolved(name) or name.endswith("."):
        return name
    return f"{name}."

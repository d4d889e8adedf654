"""The most common passwords of public breach corpora, lower-cased, letters and digits only.

A password is refused when it (or its letters and digits, or its letters alone) is one of these,
whatever is added around it in digits and punctuation: ``Password123!`` is ``password``.
"""

_WORDS = """
    123456 123456789 12345678 1234567890 12345 1234567 123123 111111 000000 654321 666666
    121212 112233 123321 987654321 555555 7777777 11111111 1234 159753 147258369 123654
    123456789012 1234567891 12341234 11223344 00000000 88888888 696969 131313 2000
    password passw0rd password1 passwd pass secret letmein welcome welcomehome changeme
    default admin administrator root toor login guest test tester demo qwerty qwertyuiop
    qwertyuiopasdfghjkl qwerty123 qwe123 qweasd qweasdzxc 123qwe 1qaz2wsx 1q2w3e 1q2w3e4r
    1q2w3e4r5t 1q2w3e4r5t6y q1w2e3r4 q1w2e3r4t5y6 zaq12wsx zaq1zaq1 qazwsx qazwsxedc
    asdfgh asdfghjkl asdf zxcvbn zxcvbnm abc abc123 abcdef abcdefgh abcdefghijkl
    iloveyou iloveyouiloveyou loveme lovely love monkey dragon master shadow sunshine
    princess football baseball basketball soccer hockey superman batman spiderman starwars
    trustno1 whatever freedom ninja mustang michael jennifer jordan hunter buster harley
    tigger charlie robert thomas daniel andrew joshua matthew jessica ashley amanda nicole
    michelle george pepper ginger maggie summer winter cheese chocolate cookie flower
    killer thunder taylor matrix dallas austin yankees chelsea liverpool arsenal computer
    internet access hello hellohello helloworld biteme letmeinplease mypassword
    passwordpassword qwertyqwerty adminadmin administrator1 rootroot useruser user
    orderbridge orderbridgeadmin supervisor specialist auditor portal company
    correcthorsebatterystaple aaaaaa aaaaaaaaaaaa zzzzzz
"""

COMMON_PASSWORDS = frozenset(_WORDS.split())
